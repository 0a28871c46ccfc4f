package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.GT;
import static jdk.incubator.vector.VectorOperators.I2B;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LT;
import static jdk.incubator.vector.VectorOperators.MAX;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

/**
 * MXFP4 (OCP microscaling FP4): blocks of 32 weights, 17 bytes: one E8M0 exponent byte e, then 16 bytes of 4-bit
 * E2M1 codes, byte j holding weight j (low nibble) and weight j+16 (high nibble). ggml stores the E2M1 values
 * doubled, as the integers of {@link #KVALUES}, and halves the scale instead: weight = KVALUES[code] * 2^(e-128).
 */
final class MXFP4Format extends KernelBase {
    static final MXFP4Format INSTANCE = new MXFP4Format();

    private MXFP4Format() {
        super(io.moe4j.kernels.GgmlType.MXFP4);
    }
    static final int QK = 32, BLOCK_BYTES = 17;
    /** E2M1 code to twice its value: sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6 doubled. */
    static final byte[] KVALUES = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    private static final ByteVector TABLE = ByteVector.fromArray(B128, KVALUES, 0);

    /** ggml's GGML_E8M0_TO_FP32_HALF: 2^(e-128), a float subnormal for e of 0 and 1. */
    static float scale(int e) {
        return Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "MXFP4");
        for (int b = 0; b < n / QK; b++) decodeBlock(src, offset + (long) b * BLOCK_BYTES, dst, dstOffset + b * QK);
    }

    /** The 32 weights of the block (exponent byte, then 16 code bytes) at {@code p}, into {@code dst[o..]}. */
    static void decodeBlock(MemorySegment src, long p, float[] dst, int o) {
        float d = scale(src.get(ValueLayout.JAVA_BYTE, p) & 0xFF);
        for (int j = 0; j < QK / 2; j++) {
            int q = src.get(ValueLayout.JAVA_BYTE, p + 1 + j) & 0xFF;
            dst[o + j] = KVALUES[q & 0x0F] * d;
            dst[o + j + QK / 2] = KVALUES[q >>> 4] * d;
        }
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            // All 16 code bytes at once; a byte shuffle through the 16-entry table turns codes into (doubled) values.
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            FloatVector d = FloatVector.broadcast(F256, Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23));
            ByteVector codes = ByteVector.fromMemorySegment(B128, s, p + 1, LE);
            ByteVector lo = codes.and((byte) 0x0F).selectFrom(TABLE);
            ByteVector hi = codes.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(TABLE);
            a0 = ((FloatVector) lo.convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = ((FloatVector) lo.convertShape(B2F, F256, 1)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = ((FloatVector) hi.convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = ((FloatVector) hi.convertShape(B2F, F256, 1)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    /** {@link #KVALUES} as floats: a block's 16 possible weights are these times its scale. */
    static final FloatVector LEVELS = FloatVector.fromArray(F512,
            new float[]{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}, 0);

    /*
     * The 512-bit kernel looks weights up in a per-block table of the block's 16 possible weights, KVALUES[code] * d,
     * computed by the same float multiplication as dequantize (so the same floats): one multiply per block, one
     * permute per 16 weights, where the byte-table kernel needed a byte shuffle, a widening conversion and a multiply.
     */
    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            IntVector t = LEVELS.mul(Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23)).reinterpretAsInts();
            // The 16 code bytes widened to 16 ints: low nibbles are weights 0..15, high nibbles 16..31.
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 1, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            z0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo), z0);
            z1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 16), z1);
        }
        FloatVector c = z0.add(z1);
        FloatVector h = (FloatVector) c.reinterpretShape(F256, 0);
        h = h.add((FloatVector) c.reinterpretShape(F256, 1));
        return ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
    }

    @Override
    int wideRowKernelMaxTokens() {
        return 7;
    }

    @Override
    boolean dotWide2(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int n, float[] out, int outOffset, int outStride) {
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, e0 = FloatVector.zero(F512), e1 = e0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int k = xOffset + QK * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            IntVector t = LEVELS.mul(Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23)).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 1, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            FloatVector w0 = (FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats();
            FloatVector w1 = (FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats();
            a0 = w0.fma(FloatVector.fromArray(F512, x, k), a0);
            a1 = w1.fma(FloatVector.fromArray(F512, x, k + 16), a1);
            e0 = w0.fma(FloatVector.fromArray(F512, x, k + xStride), e0);
            e1 = w1.fma(FloatVector.fromArray(F512, x, k + xStride + 16), e1);
        }
        FloatVector c, h;
        c = a0.add(a1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + 0] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = e0.add(e1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + outStride] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        return true;
    }

    @Override
    boolean dotWide4(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int n, float[] out, int outOffset, int outStride) {
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, e0 = FloatVector.zero(F512), e1 = e0, g0 = FloatVector.zero(F512), g1 = g0, u0 = FloatVector.zero(F512), u1 = u0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int k = xOffset + QK * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            IntVector t = LEVELS.mul(Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23)).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 1, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            FloatVector w0 = (FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats();
            FloatVector w1 = (FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats();
            a0 = w0.fma(FloatVector.fromArray(F512, x, k), a0);
            a1 = w1.fma(FloatVector.fromArray(F512, x, k + 16), a1);
            e0 = w0.fma(FloatVector.fromArray(F512, x, k + xStride), e0);
            e1 = w1.fma(FloatVector.fromArray(F512, x, k + xStride + 16), e1);
            g0 = w0.fma(FloatVector.fromArray(F512, x, k + 2 * xStride), g0);
            g1 = w1.fma(FloatVector.fromArray(F512, x, k + 2 * xStride + 16), g1);
            u0 = w0.fma(FloatVector.fromArray(F512, x, k + 3 * xStride), u0);
            u1 = w1.fma(FloatVector.fromArray(F512, x, k + 3 * xStride + 16), u1);
        }
        FloatVector c, h;
        c = a0.add(a1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + 0] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = e0.add(e1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + outStride] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = g0.add(g1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + 2 * outStride] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = u0.add(u1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[outOffset + 3 * outStride] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        return true;
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK));
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int o = dstOffset + 16 * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            FloatVector d = FloatVector.broadcast(F256, Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23));
            ByteVector codes = ByteVector.fromMemorySegment(B128, s, p + 1, LE);
            ByteVector lo = codes.and((byte) 0x0F).selectFrom(TABLE);
            ByteVector hi = codes.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(TABLE);
            ((FloatVector) lo.convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o);
            ((FloatVector) lo.convertShape(B2F, F256, 1)).mul(d).intoArray(dst, o + 8);
            ((FloatVector) hi.convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o + q);
            ((FloatVector) hi.convertShape(B2F, F256, 1)).mul(d).intoArray(dst, o + q + 8);
        }
    }

    /**
     * llama.cpp's quantize_row_mxfp4_ref: e = floor(log2(max|x|)) - 2 + 127 (so the largest magnitude lands
     * on the E2M1 range 4..6, i.e. 8..12 doubled) and each weight takes the code of the nearest representable
     * value, the first code winning ties (so 0 is +0, never -0). The SIMD form gives the same bytes (a test
     * compares the two).
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "MXFP4");
        if (QuantSupport.VECTOR) {
            quantizeVector(src, srcOffset, dst, dstOffset, n);
        } else {
            quantizeScalar(src, srcOffset, dst, dstOffset, n);
        }
    }

    /** The reference, block by block in scalar code. */
    static void quantizeScalar(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int b = 0; b < n / QK; b++) quantizeBlock(src, srcOffset + b * QK, dst, dstOffset + (long) b * BLOCK_BYTES);
    }

    private static void quantizeBlock(float[] src, int xo, MemorySegment dst, long p) {
        float amax = 0;
        for (int j = 0; j < QK; j++) {
            if (amax < Math.abs(src[xo + j])) amax = Math.abs(src[xo + j]);
        }
        int e = amax > 0 ? QuantSupport.truncToInt((float) Math.floor(log2f(amax)) - 2 + 127) & 0xFF : 0;
        float d = scale(e);
        dst.set(ValueLayout.JAVA_BYTE, p, (byte) e);
        for (int j = 0; j < QK / 2; j++) {
            int q0 = bestIndex(src[xo + j], d);
            int q1 = bestIndex(src[xo + QK / 2 + j], d);
            dst.set(ValueLayout.JAVA_BYTE, p + 1 + j, (byte) (q0 | q1 << 4));
        }
    }

    /**
     * The same bytes, 8 lanes at a time, for blocks whose max|x| is a normal float of at least 2^-100 with a
     * significand of at most 1.984375 (the rest, and blocks with NaN or infinity, take the scalar path). There,
     * floor(log2f(max|x|)) is the float's exponent E (log2 of the significand is at least 0.011 away from the
     * next integer, far more than log2f's rounding), so d = 2^(E-3) and every |x| is below 16d.
     *
     * <p>The nearest value, first code winning ties, is then a count of thresholds: code = the number of the
     * midpoints 0.5, 1.5, 2.5, 3.5, 5, 7, 10 (times d) that |x| exceeds. Why the scalar search gives the same: the
     * values k*d are exact (d is a power of two), the float error |k*d - x| rounds the exact error monotonically,
     * and two candidates can only tie in float when |x| is within an ulp of their midpoint, where Sterbenz's lemma
     * makes both subtractions exact, so the errors tie exactly at the midpoint only, and there the lower code wins
     * as in the scalar loop. A negative x has the same errors for the negative codes as |x| has for the positive
     * ones, and every positive code's error is at least |x| = the error of code 0: so its code is 8 + that of |x|,
     * except that it is 0 (not the -0 code 8) when |x| is nearest to 0.
     */
    static void quantizeVector(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int b = 0, nb = n / QK; b < nb; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            FloatVector v0 = FloatVector.fromArray(F256, src, xo), v1 = FloatVector.fromArray(F256, src, xo + 8);
            FloatVector v2 = FloatVector.fromArray(F256, src, xo + 16), v3 = FloatVector.fromArray(F256, src, xo + 24);
            FloatVector a0 = v0.abs(), a1 = v1.abs(), a2 = v2.abs(), a3 = v3.abs();
            float amax = a0.max(a1).max(a2.max(a3)).reduceLanes(MAX); // NaN if any is NaN
            int bits = Float.floatToRawIntBits(amax);
            int exp = bits >>> 23; // biased: E + 127 for a normal amax (amax >= 0, or NaN which fails below)
            if (exp < 27 || exp > 254 || (bits & 0x7FFFFF) > 0x7E0000) {
                quantizeBlock(src, xo, dst, p);
                continue;
            }
            int e = exp - 2; // = E - 2 + 127, in [25, 252]
            float d = Float.intBitsToFloat((e - 1) << 23); // scale(e) = 2^(e-128) = 2^(E-3), a normal float
            dst.set(ValueLayout.JAVA_BYTE, p, (byte) e);
            float m1 = 0.5f * d, m2 = 1.5f * d, m3 = 2.5f * d, m4 = 3.5f * d, m5 = 5 * d, m6 = 7 * d, m7 = 10 * d;
            IntVector z = IntVector.zero(I256);
            IntVector c0 = z.add(1, a0.compare(GT, m1).cast(I256)).add(1, a0.compare(GT, m2).cast(I256))
                    .add(1, a0.compare(GT, m3).cast(I256)).add(1, a0.compare(GT, m4).cast(I256))
                    .add(1, a0.compare(GT, m5).cast(I256)).add(1, a0.compare(GT, m6).cast(I256))
                    .add(1, a0.compare(GT, m7).cast(I256));
            IntVector c1 = z.add(1, a1.compare(GT, m1).cast(I256)).add(1, a1.compare(GT, m2).cast(I256))
                    .add(1, a1.compare(GT, m3).cast(I256)).add(1, a1.compare(GT, m4).cast(I256))
                    .add(1, a1.compare(GT, m5).cast(I256)).add(1, a1.compare(GT, m6).cast(I256))
                    .add(1, a1.compare(GT, m7).cast(I256));
            IntVector c2 = z.add(1, a2.compare(GT, m1).cast(I256)).add(1, a2.compare(GT, m2).cast(I256))
                    .add(1, a2.compare(GT, m3).cast(I256)).add(1, a2.compare(GT, m4).cast(I256))
                    .add(1, a2.compare(GT, m5).cast(I256)).add(1, a2.compare(GT, m6).cast(I256))
                    .add(1, a2.compare(GT, m7).cast(I256));
            IntVector c3 = z.add(1, a3.compare(GT, m1).cast(I256)).add(1, a3.compare(GT, m2).cast(I256))
                    .add(1, a3.compare(GT, m3).cast(I256)).add(1, a3.compare(GT, m4).cast(I256))
                    .add(1, a3.compare(GT, m5).cast(I256)).add(1, a3.compare(GT, m6).cast(I256))
                    .add(1, a3.compare(GT, m7).cast(I256));
            // the sign bit of the code for negative x not nearest to 0
            c0 = c0.add(8, v0.compare(LT, -m1).cast(I256));
            c1 = c1.add(8, v1.compare(LT, -m1).cast(I256));
            c2 = c2.add(8, v2.compare(LT, -m1).cast(I256));
            c3 = c3.add(8, v3.compare(LT, -m1).cast(I256));
            // byte j: weight j in the low nibble, weight j + 16 in the high one
            c0.or(c2.lanewise(LSHL, 4)).convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 1, LE);
            c1.or(c3.lanewise(LSHL, 4)).convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 9, LE);
        }
    }

    /**
     * C's log2f: the float nearest to log2(a). Computed in double and rounded once; what matters is that a
     * value just below a power of two whose log2 rounds up to the integer is floored the way C floors it.
     */
    private static float log2f(float a) {
        return (float) (Math.log(a) / Math.log(2.0));
    }

    private static int bestIndex(float v, float d) {
        int best = 0;
        float bestErr = Math.abs(KVALUES[0] * d - v);
        for (int i = 1; i < 16; i++) {
            float err = Math.abs(KVALUES[i] * d - v);
            if (err < bestErr) {
                best = i;
                bestErr = err;
            }
        }
        return best;
    }
}
