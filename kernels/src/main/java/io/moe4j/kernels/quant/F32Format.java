package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_FLOAT;

/** Plain little-endian float32. */
final class F32Format extends KernelBase {
    static final F32Format INSTANCE = new F32Format();

    private F32Format() {
        super(io.moe4j.kernels.GgmlType.F32);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = src.get(LE_FLOAT, offset + 4L * i);
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 4L * n); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 4L * i;
            int xo = xOffset + i;
            a0 = FloatVector.fromMemorySegment(F256, s, p, LE).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = FloatVector.fromMemorySegment(F256, s, p + 32, LE).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = FloatVector.fromMemorySegment(F256, s, p + 64, LE).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = FloatVector.fromMemorySegment(F256, s, p + 96, LE).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        float sum = ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
        for (int i = n & ~31; i < n; i++) sum = Math.fma(s.get(LE_FLOAT, 4L * i), x[xOffset + i], sum);
        return sum;
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 4L * n);
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 4L * i;
            int o = dstOffset + i / 2;
            FloatVector.fromMemorySegment(F256, s, p, LE).intoArray(dst, o);
            FloatVector.fromMemorySegment(F256, s, p + 32, LE).intoArray(dst, o + 8);
            FloatVector.fromMemorySegment(F256, s, p + 64, LE).intoArray(dst, o + q);
            FloatVector.fromMemorySegment(F256, s, p + 96, LE).intoArray(dst, o + q + 8);
        }
        for (int i = n & ~31; i < n; i++) dst[dstOffset + i] = s.get(LE_FLOAT, 4L * i);
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_FLOAT, dstOffset + 4L * i, src[srcOffset + i]);
    }
}
