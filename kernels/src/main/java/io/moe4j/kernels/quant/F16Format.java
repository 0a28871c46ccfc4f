package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;
import static io.moe4j.kernels.quant.QuantSupport.S128;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.S2I;

/** IEEE half precision, little-endian. */
final class F16Format extends KernelBase {
    static final F16Format INSTANCE = new F16Format();

    private F16Format() {
        super(io.moe4j.kernels.GgmlType.F16);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = Float.float16ToFloat(src.get(LE_SHORT, offset + 2L * i));
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 2L * n); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 2L * i;
            int xo = xOffset + i;
            a0 = toFloats(s, p).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = toFloats(s, p + 16).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = toFloats(s, p + 32).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = toFloats(s, p + 48).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        float sum = ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
        for (int i = n & ~31; i < n; i++) sum = Math.fma(Float.float16ToFloat(s.get(LE_SHORT, 2L * i)), x[xOffset + i], sum);
        return sum;
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, 2L * n);
        for (int i = 0, end = n & ~31; i < end; i += 32) {
            long p = 2L * i;
            int o = dstOffset + i / 2;
            toFloats(s, p).intoArray(dst, o);
            toFloats(s, p + 16).intoArray(dst, o + 8);
            toFloats(s, p + 32).intoArray(dst, o + q);
            toFloats(s, p + 48).intoArray(dst, o + q + 8);
        }
        for (int i = n & ~31; i < n; i++) dst[dstOffset + i] = Float.float16ToFloat(s.get(LE_SHORT, 2L * i));
    }

    /**
     * 8 halves at {@code off} as floats, exactly. The Vector API has no half-to-float conversion, so this is the
     * bit trick: sign, exponent and mantissa moved into a float's places make a float 2^112 too small (the bias
     * difference), also for half subnormals, so one exact multiply fixes it; the sign rides along. Infinity and
     * NaN (half exponent 31) need the float exponent all ones instead: a rare branch, so the common path is five
     * instructions. (A signalling NaN keeps its payload as is, where Float.float16ToFloat would set the quiet
     * bit: a NaN either way.) Small enough to be inlined into the loops (a few operations per call).
     */
    static FloatVector toFloats(MemorySegment src, long off) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S128, src, off, LE).convertShape(S2I, I256, 0);
        // sign to bit 31, exponent and mantissa to bits 27..13 (the arithmetic shift copies the sign into 30..28)
        IntVector bits = h.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8FFFE000);
        FloatVector v = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
        VectorMask<Integer> special = h.and(0x7c00).compare(EQ, 0x7c00);
        if (special.anyTrue()) v = fixSpecial(v, bits, special);
        return v;
    }

    private static FloatVector fixSpecial(FloatVector v, IntVector bits, VectorMask<Integer> special) {
        return (FloatVector) v.reinterpretAsInts().blend(bits.or(0x7f800000), special).reinterpretAsFloats();
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_SHORT, dstOffset + 2L * i, QuantSupport.fp32ToFp16(src[srcOffset + i]));
    }
}
