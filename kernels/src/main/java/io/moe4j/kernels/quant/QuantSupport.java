package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
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
     * instructions, so nibbles are shifted as 16-bit lanes and masked), and C2 gives up inlining a method once it
     * has too many IR nodes, leaving the remaining vector operations boxed (allocating, 5-10x slower). So a loop
     * body holds only a handful of vector operations; the K-quants unpack a super-block into a small per-thread
     * buffer first and then run a plain loop.
     */
    static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    static final boolean VECTOR = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            && !Boolean.getBoolean("moe4j.kernels.scalar");

    /** The high nibble of every byte (0..15): a 16-bit shift, masked, where a byte shift costs several instructions. */
    /**
     * The sum of the 8 lanes in one fixed order. {@code reduceLanes(ADD)} may add lanes in a different order in
     * the interpreter than in JIT-compiled code, which would make a token's logits depend on when it ran.
     */
    static float sumLanes(FloatVector v) {
        return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3))) + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
    }

    static ByteVector highNibbles(ByteVector v) {
        return v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and((byte) 0x0F);
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
