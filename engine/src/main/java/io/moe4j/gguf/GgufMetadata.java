package io.moe4j.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The key/value metadata of a GGUF file, in file order, with typed getters whose errors name file and key. */
public final class GgufMetadata {
    private final String source;
    private final Map<String, GgufValue> values;

    public GgufMetadata(String source, Map<String, GgufValue> values) {
        this.source = source;
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    public String source() {
        return source;
    }

    public Map<String, GgufValue> asMap() {
        return values;
    }

    public Set<String> keys() {
        return values.keySet();
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    public GgufValue get(String key) {
        return values.get(key);
    }

    private GgufValue require(String key) {
        GgufValue v = values.get(key);
        if (v == null) throw new ModelFormatException(source + ": required metadata key '" + key + "' is missing");
        return v;
    }

    private ModelFormatException wrongType(String key, GgufValue v, String expected) {
        String actual = v.type() == GgufValueType.ARRAY ? "ARRAY of " + v.elementType() : v.type().toString();
        return new ModelFormatException(source + ": metadata key '" + key + "' has type " + actual + ", expected " + expected);
    }

    public String getString(String key) {
        GgufValue v = require(key);
        if (v.value() instanceof String s) return s;
        throw wrongType(key, v, "STRING");
    }

    public String getString(String key, String fallback) {
        return has(key) ? getString(key) : fallback;
    }

    public long getLong(String key) {
        GgufValue v = require(key);
        if (v.value() instanceof Long l) return l;
        throw wrongType(key, v, "an integer");
    }

    public int getInt(String key) {
        long l = getLong(key);
        if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
            throw new ModelFormatException(source + ": metadata key '" + key + "' = " + l + " is out of range");
        }
        return (int) l;
    }

    public int getInt(String key, int fallback) {
        return has(key) ? getInt(key) : fallback;
    }

    /** A floating-point value; integer values are accepted too, as llama.cpp does. */
    public double getDouble(String key) {
        GgufValue v = require(key);
        return switch (v.value()) {
            case Float f -> f;
            case Double d -> d;
            case Long l -> l;
            default -> throw wrongType(key, v, "a number");
        };
    }

    public float getFloat(String key, float fallback) {
        return has(key) ? (float) getDouble(key) : fallback;
    }

    public boolean getBool(String key, boolean fallback) {
        if (!has(key)) return fallback;
        GgufValue v = values.get(key);
        if (v.value() instanceof Boolean b) return b;
        throw wrongType(key, v, "BOOL");
    }

    public String[] getStringArray(String key) {
        GgufValue v = require(key);
        if (v.value() instanceof String[] a) return a;
        throw wrongType(key, v, "ARRAY of STRING");
    }

    public float[] getFloatArray(String key) {
        GgufValue v = require(key);
        return switch (v.value()) {
            case float[] a -> a;
            case double[] a -> {
                float[] f = new float[a.length];
                for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
                yield f;
            }
            default -> throw wrongType(key, v, "ARRAY of FLOAT32");
        };
    }

    public int[] getIntArray(String key) {
        GgufValue v = require(key);
        return switch (v.value()) {
            case int[] a -> a;
            case long[] a -> {
                int[] r = new int[a.length];
                for (int i = 0; i < a.length; i++) {
                    if (a[i] < Integer.MIN_VALUE || a[i] > Integer.MAX_VALUE) {
                        throw new ModelFormatException(source + ": metadata key '" + key + "'[" + i + "] = " + a[i] + " is out of range");
                    }
                    r[i] = (int) a[i];
                }
                yield r;
            }
            case boolean[] a -> {
                int[] r = new int[a.length];
                for (int i = 0; i < a.length; i++) r[i] = a[i] ? 1 : 0;
                yield r;
            }
            default -> throw wrongType(key, v, "ARRAY of integers");
        };
    }
}
