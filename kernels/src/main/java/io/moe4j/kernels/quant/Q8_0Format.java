package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static jdk.incubator.vector.VectorOperators.B2F;

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
            float d = f16(src, p);
            for (int j = 0; j < QK; j++) dst[dstOffset + b * QK + j] = src.get(ValueLayout.JAVA_BYTE, p + 2 + j) * d;
        }
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
     * only the stored scale is rounded to f16.
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q8_0");
        for (int b = 0; b < n / QK; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
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
    }
}
