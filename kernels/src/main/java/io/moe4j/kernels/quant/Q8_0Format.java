package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.F2I;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.I2B;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.MAX;

/**
 * Q8_0: blocks of 32 weights, 34 bytes: f16 scale d, then 32 int8 q. Weight = q * d. The scale is
 * max|x| / 127, so the largest weight of a block is exactly +-127 * d (up to the f16 rounding of d).
 */
final class Q8_0Format extends KernelBase {
    static final Q8_0Format INSTANCE = new Q8_0Format();

    private Q8_0Format() {
        super(io.moe4j.kernels.GgmlType.Q8_0);
    }
    static final int QK = 32, BLOCK_BYTES = 34;

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q8_0");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            decodeBlock(src, p + 2, f16(src, p), dst, dstOffset + b * QK);
        }
    }

    /** The 32 weights of a block whose code bytes start at {@code codes}, scale {@code d}, into {@code dst[o..]}. */
    static void decodeBlock(MemorySegment src, long codes, float d, float[] dst, int o) {
        for (int j = 0; j < QK; j++) dst[o + j] = src.get(ValueLayout.JAVA_BYTE, codes + j) * d;
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            FloatVector d = FloatVector.broadcast(F256, Float.float16ToFloat(s.get(LE_SHORT, p)));
            a0 = ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 2, LE).convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 10, LE).convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 18, LE).convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 26, LE).convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            FloatVector d = FloatVector.broadcast(F512, Float.float16ToFloat(s.get(LE_SHORT, p)));
            z0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(B2F, F512, 0)).mul(d).fma(FloatVector.fromArray(F512, x, xo), z0);
            z1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 18, LE).convertShape(B2F, F512, 0)).mul(d).fma(FloatVector.fromArray(F512, x, xo + 16), z1);
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
            FloatVector d = FloatVector.broadcast(F512, Float.float16ToFloat(s.get(LE_SHORT, p)));
            FloatVector w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(B2F, F512, 0)).mul(d);
            FloatVector w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 18, LE).convertShape(B2F, F512, 0)).mul(d);
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
            FloatVector d = FloatVector.broadcast(F512, Float.float16ToFloat(s.get(LE_SHORT, p)));
            FloatVector w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2, LE).convertShape(B2F, F512, 0)).mul(d);
            FloatVector w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 18, LE).convertShape(B2F, F512, 0)).mul(d);
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
            ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 2, LE).convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o);
            ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 10, LE).convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o + 8);
            ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 18, LE).convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o + q);
            ((FloatVector) ByteVector.fromMemorySegment(B64, s, p + 26, LE).convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o + q + 8);
        }
    }

    /**
     * llama.cpp's quantize_row_q8_0_ref: d = max|x| / 127 in float, q = roundf(x * (1/d)) with the unrounded d;
     * only the stored scale is rounded to f16. The SIMD form gives the same bytes (a test compares the two).
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q8_0");
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
            float a = Math.abs(src[xo + j]);
            amax = amax > a ? amax : a; // ggml's MAX(amax, a), NaN included
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantSupport.putF16(dst, p, d);
        for (int j = 0; j < QK; j++) {
            dst.set(ValueLayout.JAVA_BYTE, p + 2 + j, (byte) QuantSupport.truncToInt(QuantSupport.roundf(src[xo + j] * id)));
        }
    }

    /**
     * The same bytes, 8 lanes at a time. Blocks whose max|x| is NaN, infinite or below 2^-120 (where 1/d may
     * overflow and C's float-to-int conversion of infinity or NaN differs from Java's) take the scalar path; in
     * every other block |x * id| is at most 127 and a bit, and roundf is exact in vector form: the truncation t of
     * v, then the fraction v - t (exact), then t + 1 where the fraction is at least 0.5, t - 1 where it is at most
     * -0.5 (halves away from zero).
     */
    static void quantizeVector(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int b = 0, nb = n / QK; b < nb; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            FloatVector v0 = FloatVector.fromArray(F256, src, xo), v1 = FloatVector.fromArray(F256, src, xo + 8);
            FloatVector v2 = FloatVector.fromArray(F256, src, xo + 16), v3 = FloatVector.fromArray(F256, src, xo + 24);
            float amax = v0.abs().max(v1.abs()).max(v2.abs().max(v3.abs())).reduceLanes(MAX); // NaN if any is NaN
            if (!(amax == 0 || amax >= 0x1p-120f && amax <= Float.MAX_VALUE)) {
                quantizeBlock(src, xo, dst, p);
                continue;
            }
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(LE_SHORT, p, Float.floatToFloat16(d)); // d is finite here: no NaN to canonicalize
            FloatVector s0 = v0.mul(id), s1 = v1.mul(id), s2 = v2.mul(id), s3 = v3.mul(id);
            IntVector t0 = (IntVector) s0.convert(F2I, 0), t1 = (IntVector) s1.convert(F2I, 0);
            IntVector t2 = (IntVector) s2.convert(F2I, 0), t3 = (IntVector) s3.convert(F2I, 0);
            FloatVector f0 = s0.sub((FloatVector) t0.convert(I2F, 0)), f1 = s1.sub((FloatVector) t1.convert(I2F, 0));
            FloatVector f2 = s2.sub((FloatVector) t2.convert(I2F, 0)), f3 = s3.sub((FloatVector) t3.convert(I2F, 0));
            t0 = t0.add(1, f0.compare(GE, 0.5f).cast(I256)).sub(1, f0.compare(VectorOperators.LE, -0.5f).cast(I256));
            t1 = t1.add(1, f1.compare(GE, 0.5f).cast(I256)).sub(1, f1.compare(VectorOperators.LE, -0.5f).cast(I256));
            t2 = t2.add(1, f2.compare(GE, 0.5f).cast(I256)).sub(1, f2.compare(VectorOperators.LE, -0.5f).cast(I256));
            t3 = t3.add(1, f3.compare(GE, 0.5f).cast(I256)).sub(1, f3.compare(VectorOperators.LE, -0.5f).cast(I256));
            t0.convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 2, LE);
            t1.convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 10, LE);
            t2.convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 18, LE);
            t3.convertShape(I2B, B64, 0).reinterpretAsBytes().intoMemorySegment(dst, p + 26, LE);
        }
    }
}
