package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.F2I;
import static jdk.incubator.vector.VectorOperators.I2B;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.MAX;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

/**
 * Q4_0: blocks of 32 weights, 18 bytes: f16 scale d, then 16 bytes of nibbles. Byte j holds weight j in its low
 * nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d.
 */
final class Q4_0Format extends KernelBase {
    static final Q4_0Format INSTANCE = new Q4_0Format();

    private Q4_0Format() {
        super(io.moe4j.kernels.GgmlType.Q4_0);
    }
    static final int QK = 32, BLOCK_BYTES = 18;

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_0");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            decodeBlock(src, p + 2, f16(src, p), dst, dstOffset + b * QK);
        }
    }

    /** The 32 weights of a block whose 16 code bytes start at {@code codes}, scale {@code d}, into {@code dst[o..]}. */
    static void decodeBlock(MemorySegment src, long codes, float d, float[] dst, int o) {
        for (int j = 0; j < QK / 2; j++) {
            int q = src.get(ValueLayout.JAVA_BYTE, codes + j) & 0xFF;
            dst[o + j] = ((q & 0x0F) - 8) * d;
            dst[o + j + QK / 2] = ((q >>> 4) - 8) * d;
        }
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            // Bytes 0..7 carry weights 0..7 (low nibbles) and 16..23 (high); bytes 8..15 carry 8..15 and 24..31.
            FloatVector d = FloatVector.broadcast(F256, Float.float16ToFloat(s.get(LE_SHORT, p)));
            IntVector i0 = (IntVector) ByteVector.fromMemorySegment(B64, s, p + 2, LE).convertShape(ZERO_EXTEND_B2I, I256, 0);
            IntVector i1 = (IntVector) ByteVector.fromMemorySegment(B64, s, p + 10, LE).convertShape(ZERO_EXTEND_B2I, I256, 0);
            a0 = ((FloatVector) i0.and(15).sub(8).convert(I2F, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = ((FloatVector) i1.and(15).sub(8).convert(I2F, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = ((FloatVector) i0.lanewise(LSHR, 4).sub(8).convert(I2F, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = ((FloatVector) i1.lanewise(LSHR, 4).sub(8).convert(I2F, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    /** The 16 nibble values less 8, as floats: a block's 16 possible weights are these times its scale. */
    static final FloatVector LEVELS = FloatVector.fromArray(F512,
            new float[]{-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7}, 0);

    /*
     * The 512-bit kernels look weights up in a per-block table instead of converting every nibble: the table holds
     * the block's 16 possible weights (nibble - 8) * d, computed by the same float multiplication as dequantize, so
     * each looked-up weight is the same float. Per block: one multiply for the table, one permute per 16 weights
     * (where the widening kernel needed a subtract, a conversion and a multiply).
     */
    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            // The 16 code bytes widened to 16 ints: low nibbles are weights 0..15, high nibbles 16..31.
            IntVector t = LEVELS.mul(Float.float16ToFloat(s.get(LE_SHORT, p))).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
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
            IntVector t = LEVELS.mul(Float.float16ToFloat(s.get(LE_SHORT, p))).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
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
            IntVector t = LEVELS.mul(Float.float16ToFloat(s.get(LE_SHORT, p))).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
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
            FloatVector d = FloatVector.broadcast(F256, Float.float16ToFloat(s.get(LE_SHORT, p)));
            IntVector i0 = (IntVector) ByteVector.fromMemorySegment(B64, s, p + 2, LE).convertShape(ZERO_EXTEND_B2I, I256, 0);
            IntVector i1 = (IntVector) ByteVector.fromMemorySegment(B64, s, p + 10, LE).convertShape(ZERO_EXTEND_B2I, I256, 0);
            ((FloatVector) i0.and(15).sub(8).convert(I2F, 0)).mul(d).intoArray(dst, o);
            ((FloatVector) i1.and(15).sub(8).convert(I2F, 0)).mul(d).intoArray(dst, o + 8);
            ((FloatVector) i0.lanewise(LSHR, 4).sub(8).convert(I2F, 0)).mul(d).intoArray(dst, o + q);
            ((FloatVector) i1.lanewise(LSHR, 4).sub(8).convert(I2F, 0)).mul(d).intoArray(dst, o + q + 8);
        }
    }

    /**
     * llama.cpp's quantize_row_q4_0_ref: d = m / -8 where m is the value of largest magnitude (the first one on
     * ties; so m itself maps to nibble 0, i.e. -8), nibble = min(15, (int)(x * (1/d) + 8.5)) with C's truncating
     * conversion. The SIMD form gives the same bytes (a test compares the two).
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_0");
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
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++) {
            float v = src[xo + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8; // -0.0 for an all-zero block, as in C
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantSupport.putF16(dst, p, d);
        for (int j = 0; j < QK / 2; j++) {
            int q0 = nibble(src[xo + j] * id);
            int q1 = nibble(src[xo + QK / 2 + j] * id);
            dst.set(ValueLayout.JAVA_BYTE, p + 2 + j, (byte) (q0 | q1 << 4));
        }
    }

    private static int nibble(float scaled) {
        // C: MIN(15, (int8_t)(scaled + 8.5f)) stored in a uint8_t; the sum is in [0, 17) for finite input.
        byte t = (byte) QuantSupport.truncToInt(scaled + 8.5f);
        return Math.min(15, t) & 0xFF;
    }

    /**
     * The same bytes, 8 lanes at a time. Blocks whose max|x| is NaN (which the scalar loop skips), infinite or
     * below 2^-120 (where 1/d may overflow) take the scalar path; in every other block x * id + 8.5 lies in
     * [0.49, 16.51], where Java's truncation is C's. m is the first lane whose |x| equals the maximum.
     */
    static void quantizeVector(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int b = 0, nb = n / QK; b < nb; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            FloatVector v0 = FloatVector.fromArray(F256, src, xo), v1 = FloatVector.fromArray(F256, src, xo + 8);
            FloatVector v2 = FloatVector.fromArray(F256, src, xo + 16), v3 = FloatVector.fromArray(F256, src, xo + 24);
            FloatVector a0 = v0.abs(), a1 = v1.abs(), a2 = v2.abs(), a3 = v3.abs();
            float amax = a0.max(a1).max(a2.max(a3)).reduceLanes(MAX); // NaN if any is NaN
            if (!(amax == 0 || amax >= 0x1p-120f && amax <= Float.MAX_VALUE)) {
                quantizeBlock(src, xo, dst, p);
                continue;
            }
            float max = 0;
            if (amax != 0) {
                long at = a0.compare(EQ, amax).toLong() | a1.compare(EQ, amax).toLong() << 8
                        | a2.compare(EQ, amax).toLong() << 16 | a3.compare(EQ, amax).toLong() << 24;
                max = src[xo + Long.numberOfTrailingZeros(at)];
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(LE_SHORT, p, Float.floatToFloat16(d)); // d is finite here: no NaN to canonicalize
            IntVector q0 = ((IntVector) v0.mul(id).add(8.5f).convert(F2I, 0)).min(15);
            IntVector q1 = ((IntVector) v1.mul(id).add(8.5f).convert(F2I, 0)).min(15);
            IntVector q2 = ((IntVector) v2.mul(id).add(8.5f).convert(F2I, 0)).min(15);
            IntVector q3 = ((IntVector) v3.mul(id).add(8.5f).convert(F2I, 0)).min(15);
            // byte j: weight j in the low nibble, weight j + 16 in the high one
            q0.or(q2.lanewise(LSHL, 4)).convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 2, LE);
            q1.or(q3.lanewise(LSHL, 4)).convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 10, LE);
        }
    }
}
