package io.moe4j;

/** The root of moe4j's own exceptions: every message names what went wrong and where. */
public class Moe4jException extends RuntimeException {
    public Moe4jException(String message) {
        super(message);
    }

    public Moe4jException(String message, Throwable cause) {
        super(message, cause);
    }
}
