package io.moe4j.server;

/**
 * A request the server refuses, reported to the client as OpenAI reports errors:
 * {@code {"error": {"message", "type", "param", "code"}}} with an HTTP status.
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;
    private final String code;

    public ApiException(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 invalid_request_error. */
    public static ApiException invalid(String param, String code, String message) {
        return new ApiException(400, "invalid_request_error", param, code, message);
    }

    public static ApiException invalidType(String param, String expected, String got) {
        return invalid(param, "invalid_type", "Invalid type for '" + param + "': expected " + expected + ", but got " + got + " instead.");
    }

    public static ApiException invalidValue(String param, String message) {
        return invalid(param, "invalid_value", message);
    }

    public static ApiException missing(String param) {
        return invalid(param, "missing_required_parameter", "Missing required parameter: '" + param + "'.");
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }
}
