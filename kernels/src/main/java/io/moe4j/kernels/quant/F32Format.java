package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_FLOAT;
import static io.moe4j.kernels.quant.QuantSupport.VECTOR;

/** Plain little-endian float32. */
final class F32Format implements BlockFormat, BlockQuantizer {
    static final F32Format INSTANCE = new F32Format();

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = src.get(LE_FLOAT, offset + 4L * i);
    }

    @Override
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        return VECTOR ? dotVector(src, offset, x, xOffset, n) : dotScalar(src, offset, x, xOffset, n);
    }

    float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += src.get(LE_FLOAT, offset + 4L * i) * x[xOffset + i];
        return s;
    }

    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        // Two accumulators so consecutive FMAs do not wait on each other.
        FloatVector a0 = FloatVector.zero(F256), a1 = FloatVector.zero(F256);
        int i = 0;
        for (int end = n & ~15; i < end; i += 16) {
            a0 = FloatVector.fromMemorySegment(F256, src, offset + 4L * i, LE).fma(FloatVector.fromArray(F256, x, xOffset + i), a0);
            a1 = FloatVector.fromMemorySegment(F256, src, offset + 4L * i + 32, LE).fma(FloatVector.fromArray(F256, x, xOffset + i + 8), a1);
        }
        float s = QuantSupport.sumLanes(a0.add(a1));
        for (; i < n; i++) s += src.get(LE_FLOAT, offset + 4L * i) * x[xOffset + i];
        return s;
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_FLOAT, dstOffset + 4L * i, src[srcOffset + i]);
    }
}
