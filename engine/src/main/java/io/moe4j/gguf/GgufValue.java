package io.moe4j.gguf;

/**
 * One metadata value with its GGUF type. Scalars: integers as {@link Long} (u64 as its bit pattern), FLOAT32 as
 * {@link Float}, FLOAT64 as {@link Double}, BOOL as {@link Boolean}, STRING as {@link String}. Arrays: 8/16/32-bit
 * integers as {@code int[]} (u32 as its bit pattern), 64-bit ones as {@code long[]}, then {@code float[]},
 * {@code double[]}, {@code boolean[]}, {@code String[]}, and nested arrays as {@code GgufValue[]}.
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    public static GgufValue of(String s) {
        return new GgufValue(GgufValueType.STRING, null, s);
    }

    public static GgufValue ofU32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }

    public static GgufValue ofF32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, null, v);
    }

    public static GgufValue ofBool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, null, v);
    }

    public static GgufValue ofArray(String[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.STRING, v);
    }

    public static GgufValue ofArray(float[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.FLOAT32, v);
    }

    public static GgufValue ofArrayI32(int[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.INT32, v);
    }

    /** A scalar of any non-array type, e.g. {@code GgufValue.scalar(GgufValueType.UINT64, 1L << 40)}. */
    public static GgufValue scalar(GgufValueType type, Object value) {
        if (type == GgufValueType.ARRAY) throw new ModelFormatException("GgufValue.scalar: use GgufValue.array for ARRAY values");
        return new GgufValue(type, null, value);
    }

    /**
     * An array, e.g. {@code GgufValue.array(GgufValueType.UINT8, new int[] {...})}; the Java array is the one
     * documented above for that element type (GgufValue[] of ARRAY values for nested arrays).
     */
    public static GgufValue array(GgufValueType elementType, Object values) {
        return new GgufValue(GgufValueType.ARRAY, elementType, values);
    }

    public int arrayLength() {
        return switch (value) {
            case int[] a -> a.length;
            case long[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case boolean[] a -> a.length;
            case String[] a -> a.length;
            case GgufValue[] a -> a.length;
            default -> -1;
        };
    }

    /** A short human-readable rendering (arrays abbreviated), for inspect output and error messages. */
    public String describe() {
        if (type != GgufValueType.ARRAY) {
            return type == GgufValueType.STRING ? '"' + abbreviate((String) value, 80) + '"' : String.valueOf(value);
        }
        StringBuilder sb = new StringBuilder("[").append(elementType).append(" x ").append(arrayLength());
        int shown = Math.min(arrayLength(), 5);
        if (shown > 0) sb.append(": ");
        for (int i = 0; i < shown; i++) {
            if (i > 0) sb.append(", ");
            sb.append(switch (value) {
                case int[] a -> String.valueOf(a[i]);
                case long[] a -> String.valueOf(a[i]);
                case float[] a -> String.valueOf(a[i]);
                case double[] a -> String.valueOf(a[i]);
                case boolean[] a -> String.valueOf(a[i]);
                case String[] a -> '"' + abbreviate(a[i], 20) + '"';
                case GgufValue[] a -> a[i].describe();
                default -> "?";
            });
        }
        if (shown < arrayLength()) sb.append(", ...");
        return sb.append(']').toString();
    }

    private static String abbreviate(String s, int max) {
        String oneLine = s.replace("\n", "\\n");
        return oneLine.length() <= max ? oneLine : oneLine.substring(0, max) + "...";
    }
}
