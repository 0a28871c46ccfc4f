package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.VECTOR;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static jdk.incubator.vector.VectorOperators.B2F;

/**
 * Q8_0: blocks of 32 weights, 34 bytes: f16 scale d, then 32 int8 q. Weight = q * d. The scale is
 * max|x| / 127, so the largest weight of a block is exactly +-127 * d (up to the f16 rounding of d).
 */
final class Q8_0Format implements BlockFormat, BlockQuantizer {
    static final Q8_0Format INSTANCE = new Q8_0Format();
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
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q8_0");
        return VECTOR ? dotVector(src, offset, x, xOffset, n) : dotScalar(src, offset, x, xOffset, n);
    }

    /** Per block sum(q * x), then times d: the same product as dequantizing first, with d factored out. */
    float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            int xo = xOffset + b * QK;
            float bs = 0;
            for (int j = 0; j < QK; j++) bs += src.get(ValueLayout.JAVA_BYTE, p + 2 + j) * x[xo + j];
            s += bs * f16(src, p);
        }
        return s;
    }

    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F256);
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES + 2;
            int xo = xOffset + b * QK;
            // Two chains of FMAs per block, 8 weights each step: int8 widened straight to float.
            FloatVector s0 = q8(src, p).mul(FloatVector.fromArray(F256, x, xo));
            FloatVector s1 = q8(src, p + 8).mul(FloatVector.fromArray(F256, x, xo + 8));
            s0 = q8(src, p + 16).fma(FloatVector.fromArray(F256, x, xo + 16), s0);
            s1 = q8(src, p + 24).fma(FloatVector.fromArray(F256, x, xo + 24), s1);
            acc = s0.add(s1).fma(FloatVector.broadcast(F256, f16(src, p - 2)), acc);
        }
        return QuantSupport.sumLanes(acc);
    }

    private static FloatVector q8(MemorySegment src, long off) {
        return (FloatVector) ByteVector.fromMemorySegment(B64, src, off, LE).convertShape(B2F, F256, 0);
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
