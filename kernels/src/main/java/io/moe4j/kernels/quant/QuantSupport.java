package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * What the block formats share: little-endian layouts, ggml's scalar conversions and rounding rules (reproduced
 * exactly, since the quantizers must give llama.cpp's bytes), and the SIMD shapes the {@code dot} kernels use.
 */
final class QuantSupport {
    private QuantSupport() {
    }

    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);

    /*
     * The dot kernels work on 256-bit float vectors: 8 lanes, so a 32-element block is 4 vectors, and codes are
     * mostly read as 64-bit byte vectors widened (part 0) to 8 floats, a shape C2 compiles to one widening
     * instruction. Where the hardware has narrower vectors (e.g. 128-bit NEON) the Vector API would emulate
     * 256 bits very slowly, so the kernels fall back to their scalar loops there. -Dmoe4j.kernels.scalar=true
     * forces that.
     *
     * Two things matter for speed, both measured: x86 has no byte shifts (the Vector API emulates one in several
     * instructions, so nibbles are shifted as 16-bit lanes, or widened to ints first, and masked), and C2 gives up
     * inlining a method once it has too many IR nodes, leaving the remaining vector operations boxed (allocating,
     * 5-10x slower). So the kernels write their loops with Vector API calls only (no helper methods taking or
     * returning vectors), and Q6_K unpacks a super-block into a small buffer before its loop.
     */
    static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    static final boolean VECTOR = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            && !Boolean.getBoolean("moe4j.kernels.scalar");
    /**
     * Where the hardware has 512-bit vectors (AVX-512), the row kernels of the main types hold their 4 lane groups in
     * two 16-lane registers: the same operations lane for lane, so the same floats, in half the instructions (the
     * decode kernels are bound by instruction throughput). -Dmoe4j.kernels.no512=true keeps 256 bits.
     */
    static final boolean WIDE = VECTOR && FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512
            && !Boolean.getBoolean("moe4j.kernels.no512");
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    /**
     * The reduction order every dot kernel implements, written out in scalar code. Weight i (i below the last multiple
     * of 32) is multiplied into accumulator lane i % 32 with a fused multiply-add, in increasing i: four groups of 8
     * lanes, g0..g3, one per 8 consecutive weights of every 32. The groups are combined lane by lane as
     * (g0 + g2) + (g1 + g3), the 8 lanes of that summed as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), and the remaining
     * elements (plain float types only) added one by one with a fused multiply-add. The SIMD kernels give the same
     * float, bit for bit: a row's 4 groups are 4 independent chains of FMAs (enough to hide their latency while one
     * row streams from memory), and a tile of the matrix kernels runs the 4 groups one after the other.
     */
    static float dotLanes(float[] w, int wOff, float[] x, int xOff, int n) {
        float[] acc = new float[32];
        int end = n & ~31, i = 0;
        for (; i < end; i++) acc[i & 31] = Math.fma(w[wOff + i], x[xOff + i], acc[i & 31]);
        float[] c = new float[8];
        for (int l = 0; l < 8; l++) c[l] = (acc[l] + acc[16 + l]) + (acc[8 + l] + acc[24 + l]);
        float s = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
        for (; i < n; i++) s = Math.fma(w[wOff + i], x[xOff + i], s);
        return s;
    }


    /** The IEEE half at {@code off} as a float (exact). */
    static float f16(MemorySegment s, long off) {
        return Float.float16ToFloat(s.get(LE_SHORT, off));
    }

    /**
     * float to IEEE half as ggml's GGML_FP32_TO_FP16 does: round to nearest even (as Java), overflow to
     * infinity, but every NaN becomes the quiet NaN 0x7E00 with the input's sign (Java keeps payload bits).
     */
    static short fp32ToFp16(float f) {
        if (Float.isNaN(f)) return (short) ((Float.floatToRawIntBits(f) >>> 16 & 0x8000) | 0x7E00);
        return Float.floatToFloat16(f);
    }

    /** float to bfloat16 as ggml's GGML_FP32_TO_BF16: round to nearest even on the bits, NaN forced quiet. */
    static short fp32ToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (short) ((u >>> 16) | 64);
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    static void putF16(MemorySegment s, long off, float f) {
        s.set(LE_SHORT, off, fp32ToFp16(f));
    }

    /** C's roundf: halves away from zero (Math.round rounds them up, and misrounds 0.49999997f). */
    static float roundf(float v) {
        // |v| + 0.5 is exact in double for every float below 2^29; larger floats are integers already.
        return Math.abs(v) >= 0x1p23f ? v : (float) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }

    /**
     * ggml's nearest_int: adds 1.5*2^23 so that the float addition rounds (to nearest even) and reads the
     * integer from the mantissa. Valid for |v| < 2^22; reproduced bit for bit, including what it does beyond.
     */
    static int nearestInt(float v) {
        float t = v + 12582912f;
        return (Float.floatToRawIntBits(t) & 0x007fffff) - 0x00400000;
    }

    /** C's (int) conversion of a float as x86 does it (cvttss2si): truncation, NaN and overflow give MIN_VALUE. */
    static int truncToInt(float v) {
        return Float.isNaN(v) || v >= 0x1p31f || v < -0x1p31f ? Integer.MIN_VALUE : (int) v;
    }

    static void checkBlocks(int n, int blockSize, String type) {
        if (n % blockSize != 0) {
            throw new IllegalArgumentException(type + ": " + n + " elements are not a whole number of blocks of " + blockSize);
        }
    }
}
