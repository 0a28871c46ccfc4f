package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;
import static io.moe4j.kernels.quant.QuantSupport.S128;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.S2I;

/** bfloat16 (the top half of a float32), little-endian. */
final class BF16Format extends KernelBase {
    static final BF16Format INSTANCE = new BF16Format();

    private BF16Format() {
        super(io.moe4j.kernels.GgmlType.BF16);
    }

    static float toFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = toFloat(src.get(LE_SHORT, offset + 2L * i));
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 2L * n); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 2L * i;
            int xo = xOffset + i;
            a0 = ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 16, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 32, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 48, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        float sum = ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
        for (int i = n & ~31; i < n; i++) sum = Math.fma(toFloat(s.get(LE_SHORT, 2L * i)), x[xOffset + i], sum);
        return sum;
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 2L * n);
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 2L * i;
            int o = dstOffset + i / 2;
            ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).intoArray(dst, o);
            ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 16, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).intoArray(dst, o + 8);
            ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 32, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).intoArray(dst, o + q);
            ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S128, s, p + 48, LE).convertShape(S2I, I256, 0)).lanewise(LSHL, 16).reinterpretAsFloats()).intoArray(dst, o + q + 8);
        }
        for (int i = n & ~31; i < n; i++) dst[dstOffset + i] = toFloat(s.get(LE_SHORT, 2L * i));
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_SHORT, dstOffset + 2L * i, QuantSupport.fp32ToBf16(src[srcOffset + i]));
    }
}
