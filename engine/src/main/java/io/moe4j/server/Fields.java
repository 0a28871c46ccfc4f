package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Typed, validated access to the fields of a JSON request object. A field that is absent or {@code null} is
 * "not given"; a field of the wrong type or out of range is an {@link ApiException} naming it.
 */
final class Fields {
    private final JsonNode node;
    private final String prefix;

    Fields(JsonNode node, String prefix) {
        this.node = node;
        this.prefix = prefix;
    }

    static Fields of(JsonNode node, String name) {
        if (node == null || !node.isObject()) throw ApiException.invalidType(name.isEmpty() ? "body" : name, "an object", describe(node));
        return new Fields(node, name.isEmpty() ? "" : name + ".");
    }

    String param(String name) {
        return prefix + name;
    }

    JsonNode raw(String name) {
        JsonNode v = node.get(name);
        return v == null || v.isNull() ? null : v;
    }

    boolean has(String name) {
        return raw(name) != null;
    }

    static String describe(JsonNode v) {
        if (v == null || v.isNull()) return "null";
        if (v.isTextual()) return "a string";
        if (v.isBoolean()) return "a boolean";
        if (v.isIntegralNumber()) return "an integer";
        if (v.isNumber()) return "a decimal";
        if (v.isArray()) return "an array";
        if (v.isObject()) return "an object";
        return "an unsupported value";
    }

    String string(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isTextual()) throw ApiException.invalidType(param(name), "a string", describe(v));
        return v.textValue();
    }

    String requiredString(String name) {
        String s = string(name);
        if (s == null) throw ApiException.missing(param(name));
        return s;
    }

    Boolean bool(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isBoolean()) throw ApiException.invalidType(param(name), "a boolean", describe(v));
        return v.booleanValue();
    }

    boolean bool(String name, boolean fallback) {
        Boolean b = bool(name);
        return b == null ? fallback : b;
    }

    /** A number in [min, max], or null when not given. */
    Double number(String name, double min, double max) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isNumber()) throw ApiException.invalidType(param(name), "a number", describe(v));
        double d = v.doubleValue();
        if (!(d >= min && d <= max)) {
            throw ApiException.invalidValue(param(name), "Invalid '" + param(name) + "': " + v.asText() + " is not between "
                    + fmt(min) + " and " + fmt(max) + ".");
        }
        return d;
    }

    /** An integer in [min, max], or null when not given. */
    Long integer(String name, long min, long max) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isIntegralNumber()) throw ApiException.invalidType(param(name), "an integer", describe(v));
        if (!v.canConvertToLong()) {
            throw ApiException.invalidValue(param(name), "Invalid '" + param(name) + "': " + v.asText() + " is not between " + min + " and " + max + ".");
        }
        long l = v.longValue();
        if (l < min || l > max) {
            throw ApiException.invalidValue(param(name), "Invalid '" + param(name) + "': " + l + " is not between " + min + " and " + max + ".");
        }
        return l;
    }

    JsonNode array(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isArray()) throw ApiException.invalidType(param(name), "an array", describe(v));
        return v;
    }

    JsonNode object(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isObject()) throw ApiException.invalidType(param(name), "an object", describe(v));
        return v;
    }

    private static String fmt(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }
}
