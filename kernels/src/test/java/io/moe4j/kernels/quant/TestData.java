package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Random;

/** Random encoded weights and the per-type entry points of the dot kernels, for the tests of this package. */
final class TestData {
    private TestData() {
    }

    static final List<GgmlType> TYPES = List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0,
            GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.MXFP4);

    @FunctionalInterface
    interface Dot {
        float dot(MemorySegment src, long offset, float[] x, int xOffset, int n);
    }

    static Dot scalarDot(GgmlType t) {
        return switch (t) {
            case F32 -> F32Format.INSTANCE::dotScalar;
            case F16 -> F16Format.INSTANCE::dotScalar;
            case BF16 -> BF16Format.INSTANCE::dotScalar;
            case Q8_0 -> Q8_0Format.INSTANCE::dotScalar;
            case Q4_0 -> Q4_0Format.INSTANCE::dotScalar;
            case Q4_K -> Q4_KFormat.INSTANCE::dotScalar;
            case Q6_K -> Q6_KFormat.INSTANCE::dotScalar;
            case MXFP4 -> MXFP4Format.INSTANCE::dotScalar;
            default -> throw new AssertionError(t);
        };
    }

    static Dot vectorDot(GgmlType t) {
        return switch (t) {
            case F32 -> F32Format.INSTANCE::dotVector;
            case F16 -> F16Format.INSTANCE::dotVector;
            case BF16 -> BF16Format.INSTANCE::dotVector;
            case Q8_0 -> Q8_0Format.INSTANCE::dotVector;
            case Q4_0 -> Q4_0Format.INSTANCE::dotVector;
            case Q4_K -> Q4_KFormat.INSTANCE::dotVector;
            case Q6_K -> Q6_KFormat.INSTANCE::dotVector;
            case MXFP4 -> MXFP4Format.INSTANCE::dotVector;
            default -> throw new AssertionError(t);
        };
    }

    static float[] gaussian(Random r, int n, double sigma) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * sigma);
        return x;
    }

    /** Every byte random: any bit pattern, NaN and infinite scales included. */
    static byte[] rawBytes(GgmlType t, int nBlocks, Random r) {
        byte[] b = new byte[nBlocks * t.blockBytes];
        r.nextBytes(b);
        return b;
    }

    private static void putHalf(byte[] b, int p, float v) {
        short h = Float.floatToFloat16(v);
        b[p] = (byte) h;
        b[p + 1] = (byte) (h >> 8);
    }

    private static float scale(Random r) {
        return (float) ((r.nextBoolean() ? 1 : -1) * Math.exp(r.nextDouble(Math.log(1e-3), Math.log(1e-1))));
    }

    /**
     * Random codes (every nibble / bit pattern) with finite, moderate scales, so that dot products are finite
     * and comparable. Plain types get random finite values over a wide exponent range.
     */
    static byte[] saneBlocks(GgmlType t, int nBlocks, Random r) {
        byte[] b = rawBytes(t, nBlocks, r);
        for (int k = 0; k < nBlocks; k++) {
            int p = k * t.blockBytes;
            switch (t) {
                case F32 -> {
                    int bits = Float.floatToRawIntBits((float) (r.nextGaussian() * Math.exp(r.nextDouble(-8, 8))));
                    for (int i = 0; i < 4; i++) b[p + i] = (byte) (bits >> 8 * i);
                }
                case F16 -> { // exponent 0..30: normals and subnormals, no infinity or NaN
                    int h = r.nextInt(1 << 16);
                    if ((h >> 10 & 31) == 31) h &= ~(1 << 14);
                    b[p] = (byte) h;
                    b[p + 1] = (byte) (h >> 8);
                }
                case BF16 -> { // exponents 2^-27 .. 2^22
                    int h = r.nextInt(1 << 16) & 0x807F | (100 + r.nextInt(50)) << 7;
                    b[p] = (byte) h;
                    b[p + 1] = (byte) (h >> 8);
                }
                case Q8_0, Q4_0 -> putHalf(b, p, scale(r));
                case Q4_K -> {
                    putHalf(b, p, Math.abs(scale(r)) / 8);
                    putHalf(b, p + 2, Math.abs(scale(r)) / 8);
                }
                case Q6_K -> putHalf(b, p + 208, scale(r) / 16);
                case MXFP4 -> b[p] = (byte) (110 + r.nextInt(30));
                default -> throw new AssertionError(t);
            }
        }
        return b;
    }
}
