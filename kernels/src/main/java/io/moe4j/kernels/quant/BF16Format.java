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
import static io.moe4j.kernels.quant.QuantSupport.VECTOR;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.S2I;

/** bfloat16 (the top half of a float32), little-endian. */
final class BF16Format implements BlockFormat, BlockQuantizer {
    static final BF16Format INSTANCE = new BF16Format();

    static float toFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = toFloat(src.get(LE_SHORT, offset + 2L * i));
    }

    @Override
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        return VECTOR ? dotVector(src, offset, x, xOffset, n) : dotScalar(src, offset, x, xOffset, n);
    }

    float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += toFloat(src.get(LE_SHORT, offset + 2L * i)) * x[xOffset + i];
        return s;
    }

    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        FloatVector a0 = FloatVector.zero(F256), a1 = FloatVector.zero(F256);
        int i = 0;
        for (int end = n & ~15; i < end; i += 16) {
            a0 = toFloats(src, offset + 2L * i).fma(FloatVector.fromArray(F256, x, xOffset + i), a0);
            a1 = toFloats(src, offset + 2L * i + 16).fma(FloatVector.fromArray(F256, x, xOffset + i + 8), a1);
        }
        float s = QuantSupport.sumLanes(a0.add(a1));
        for (; i < n; i++) s += toFloat(src.get(LE_SHORT, offset + 2L * i)) * x[xOffset + i];
        return s;
    }

    /** 8 bfloat16 at {@code off} widened to ints and shifted into the top half: exactly the floats. */
    private static FloatVector toFloats(MemorySegment src, long off) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S128, src, off, LE).convertShape(S2I, I256, 0);
        return (FloatVector) h.lanewise(LSHL, 16).reinterpretAsFloats();
    }

    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        for (int i = 0; i < n; i++) dst.set(LE_SHORT, dstOffset + 2L * i, QuantSupport.fp32ToBf16(src[srcOffset + i]));
    }
}
