package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;

import java.lang.foreign.MemorySegment;

/** The {@link BlockFormat} (decoding) and {@link BlockQuantizer} (encoding) of each supported weight type. */
public final class BlockFormats {
    private static final String SUPPORTED = " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4)";

    private BlockFormats() {
    }

    /** Whether the weight kernels run their 256-bit (or wider) Vector API paths on this machine. */
    public static boolean vectorKernels() {
        return QuantSupport.VECTOR;
    }

    public static BlockFormat of(GgmlType type) {
        return switch (type) {
            case F32 -> F32Format.INSTANCE;
            case F16 -> F16Format.INSTANCE;
            case BF16 -> BF16Format.INSTANCE;
            case Q8_0 -> Q8_0Format.INSTANCE;
            case Q4_0 -> Q4_0Format.INSTANCE;
            case Q4_K -> Q4_KFormat.INSTANCE;
            case Q6_K -> Q6_KFormat.INSTANCE;
            case MXFP4 -> MXFP4Format.INSTANCE;
            default -> throw new UnsupportedOperationException("weight type " + type + " has no kernel" + SUPPORTED);
        };
    }

    /**
     * The interleaved layout of {@code type} for the decode kernels (see {@link InterleavedFormat}), or null where
     * the type has none or the CPU lacks the 512-bit vectors its kernels are written for.
     */
    public static InterleavedFormat interleaved(GgmlType type) {
        if (!QuantSupport.WIDE) return null;
        return switch (type) {
            case Q4_0 -> FourBitInterleaved.Q4_0;
            case Q8_0 -> Q8_0Interleaved.INSTANCE;
            case MXFP4 -> FourBitInterleaved.MXFP4;
            case Q4_K -> Q4_KInterleaved.INSTANCE;
            case Q6_K -> Q6_KInterleaved.INSTANCE;
            default -> null;
        };
    }

    public static BlockQuantizer quantizer(GgmlType type) {
        return switch (type) {
            case F32 -> F32Format.INSTANCE;
            case F16 -> F16Format.INSTANCE;
            case BF16 -> BF16Format.INSTANCE;
            case Q8_0 -> Q8_0Format.INSTANCE;
            case Q4_0 -> Q4_0Format.INSTANCE;
            case Q4_K -> Q4_KFormat.INSTANCE;
            case Q6_K -> Q6_KFormat.INSTANCE;
            case MXFP4 -> MXFP4Format.INSTANCE;
            default -> throw new UnsupportedOperationException("weight type " + type + " has no quantizer" + SUPPORTED);
        };
    }

    /** {@code src[offset .. offset+n)} encoded as {@code type}: a new array of {@code type.bytesFor(n)} bytes. */
    public static byte[] quantize(GgmlType type, float[] src, int offset, int n) {
        byte[] out = new byte[Math.toIntExact(type.bytesFor(n))];
        quantizer(type).quantize(src, offset, MemorySegment.ofArray(out), 0, n);
        return out;
    }
}
