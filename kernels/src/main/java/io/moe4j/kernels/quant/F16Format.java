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
import static io.moe4j.kernels.quant.QuantSupport.VECTOR;
import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.S2I;

/** IEEE half precision, little-endian. */
final class F16Format implements BlockFormat, BlockQuantizer {
    static final F16Format INSTANCE = new F16Format();

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = Float.float16ToFloat(src.get(LE_SHORT, offset + 2L * i));
    }

    @Override
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        return VECTOR ? dotVector(src, offset, x, xOffset, n) : dotScalar(src, offset, x, xOffset, n);
    }

    float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += Float.float16ToFloat(src.get(LE_SHORT, offset + 2L * i)) * x[xOffset + i];
        return s;
    }

    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        FloatVector a0 = FloatVector.zero(F256), a1 = FloatVector.zero(F256);
        int i = 0;
        for (int end = n & ~15; i < end; i += 16) {
            a0 = toFloats(src, offset + 2L * i).fma(FloatVector.fromArray(F256, x, xOffset + i), a0);
            a1 = toFloats(src, offset + 2L * i + 16).fma(FloatVector.fromArray(F256, x, xOffset + i + 8), a1);
        }
        float s = a0.add(a1).reduceLanes(ADD);
        for (; i < n; i++) s += Float.float16ToFloat(src.get(LE_SHORT, offset + 2L * i)) * x[xOffset + i];
        return s;
    }

    /**
     * 8 halves at {@code off} as floats, exactly. The Vector API has no half-to-float conversion, so this is the
     * bit trick: the half's exponent and mantissa shifted into a float's place make a float 2^112 too small
     * (the bias difference), also for half subnormals, so one exact multiply fixes it. Infinity and NaN (half
     * exponent 31) need the float exponent all ones instead; the sign bit is put back last. (A signalling NaN
     * keeps its payload as is, where Float.float16ToFloat would set the quiet bit: a NaN either way.)
     */
    static FloatVector toFloats(MemorySegment src, long off) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S128, src, off, LE).convertShape(S2I, I256, 0);
        IntVector mag = h.and(0x7fff);
        IntVector shifted = mag.lanewise(LSHL, 13);
        IntVector finite = ((FloatVector) shifted.reinterpretAsFloats()).mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> special = mag.compare(GE, 0x7c00);
        IntVector bits = finite.blend(shifted.or(0x7f800000), special).or(h.and(0x8000).lanewise(LSHL, 16));
        return (FloatVector) bits.reinterpretAsFloats();
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_SHORT, dstOffset + 2L * i, QuantSupport.fp32ToFp16(src[srcOffset + i]));
    }
}
