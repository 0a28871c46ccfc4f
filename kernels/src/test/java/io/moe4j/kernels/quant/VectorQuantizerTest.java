package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The SIMD quantizers of Q8_0, Q4_0 and MXFP4 against their scalar reference (the code that gives llama.cpp's bytes,
 * checked on hand-worked blocks in {@link QuantizerTest} and on llama-quantize's files in the golden tests): byte for
 * byte, on blocks built to hit every rounding boundary and every fallback to the scalar path (ties at .5 after
 * scaling, C's roundf at 0.49999997, MXFP4's midpoints and exponent edges, zeros of both signs, all-equal blocks,
 * huge, tiny and subnormal values, infinities, NaNs, random bit patterns), at odd source and destination offsets.
 * (Every float of [-127, 127] through Q8_0 with d = 1, of [-8, 8] through Q4_0 and of [-1.98, 1.98] through MXFP4
 * at one scale were also checked exhaustively once; that takes minutes, so it is not a unit test.)
 */
class VectorQuantizerTest {

    @FunctionalInterface
    interface Quantize {
        void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n);
    }

    private static Quantize scalar(GgmlType t) {
        return switch (t) {
            case Q8_0 -> Q8_0Format::quantizeScalar;
            case Q4_0 -> Q4_0Format::quantizeScalar;
            case MXFP4 -> MXFP4Format::quantizeScalar;
            default -> throw new AssertionError(t);
        };
    }

    private static Quantize vector(GgmlType t) {
        return switch (t) {
            case Q8_0 -> Q8_0Format::quantizeVector;
            case Q4_0 -> Q4_0Format::quantizeVector;
            case MXFP4 -> MXFP4Format::quantizeVector;
            default -> throw new AssertionError(t);
        };
    }

    /** Where one of the type's roundings changes for a block whose scale comes from {@code amax}: a few such x. */
    private static float boundary(GgmlType t, float amax, Random r) {
        switch (t) {
            case Q8_0 -> { // x * id = k + 0.5
                float d = amax / 127, id = d != 0 ? 1 / d : 0;
                float x = (r.nextInt(255) - 127 + 0.5f) / id;
                return wiggle(x, r);
            }
            case Q4_0 -> { // x * id + 8.5 = k
                float d = amax / 8, id = 1 / d;
                float x = (r.nextInt(18) - 8.5f) / id;
                return wiggle(x, r);
            }
            case MXFP4 -> { // the midpoints between E2M1 values, times d = 2^(floor(log2 amax) - 3)
                float[] mids = {0.5f, 1.5f, 2.5f, 3.5f, 5, 7, 10};
                float d = Math.scalb(1f, Math.getExponent(amax) - 3);
                float x = mids[r.nextInt(mids.length)] * d * (r.nextBoolean() ? 1 : -1);
                return wiggle(x, r);
            }
            default -> throw new AssertionError(t);
        }
    }

    /** x, or one or two ulps either side of it. */
    private static float wiggle(float x, Random r) {
        return switch (r.nextInt(5)) {
            case 0 -> Math.nextUp(x);
            case 1 -> Math.nextDown(x);
            case 2 -> Math.nextUp(Math.nextUp(x));
            case 3 -> Math.nextDown(Math.nextDown(x));
            default -> x;
        };
    }

    private static final float[] SPECIAL = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, 0x1p-120f,
            Math.nextDown(0x1p-120f), 0x1p-100f, Math.nextDown(0x1p-100f), 1e-30f, 0.49999997f, -0.49999997f, 0.5f, -0.5f,
            1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 127f, 8f, -8f, 7.5f, Math.nextDown(8f), 1.984375f, Math.nextUp(1.984375f),
            Math.nextDown(2f), 3e38f, -3e38f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0xFFC00001)};

    /** One block of 32 values of a randomly chosen kind into {@code x[o..o+32)}. */
    private static void block(GgmlType t, float[] x, int o, Random r) {
        int kind = r.nextInt(12);
        float scale = (float) Math.exp(r.nextDouble(-12, 12));
        switch (kind) {
            case 0, 1 -> { // plain weights, any scale
                for (int j = 0; j < 32; j++) x[o + j] = (float) (r.nextGaussian() * scale);
            }
            case 2, 3 -> { // many values on rounding boundaries, with an exact maximum somewhere
                float amax = (r.nextBoolean() ? 127f : r.nextBoolean() ? 8f : 1.5f) * Math.scalb(1f, r.nextInt(-30, 30));
                if (r.nextBoolean()) amax = (float) (amax * r.nextDouble(0.5, 2));
                int at = r.nextInt(32);
                for (int j = 0; j < 32; j++) {
                    x[o + j] = j == at ? amax * (r.nextBoolean() ? 1 : -1) : boundary(t, amax, r);
                    if (Math.abs(x[o + j]) > amax) x[o + j] = amax;
                }
            }
            case 4 -> { // d = 1 for Q8_0: q = roundf(x)
                for (int j = 0; j < 32; j++) x[o + j] = r.nextInt(255) - 127 + (r.nextBoolean() ? 0.5f : 0.49999997f) * (r.nextBoolean() ? 1 : -1);
                x[o + r.nextInt(32)] = r.nextBoolean() ? 127f : -127f;
            }
            case 5 -> { // all equal, zeros of either sign included
                float c = switch (r.nextInt(4)) {
                    case 0 -> 0f;
                    case 1 -> -0f;
                    case 2 -> SPECIAL[r.nextInt(SPECIAL.length)];
                    default -> (float) r.nextGaussian() * scale;
                };
                Arrays.fill(x, o, o + 32, c);
            }
            case 6 -> { // zeros with a few values, ties in |x| between +m and -m
                Arrays.fill(x, o, o + 32, r.nextBoolean() ? 0f : -0f);
                float m = (float) r.nextGaussian() * scale;
                for (int k = 0; k < 3; k++) x[o + r.nextInt(32)] = r.nextBoolean() ? m : -m;
            }
            case 7 -> { // special values mixed into weights
                for (int j = 0; j < 32; j++) x[o + j] = r.nextInt(4) == 0 ? SPECIAL[r.nextInt(SPECIAL.length)] : (float) r.nextGaussian() * scale;
            }
            case 8 -> { // tiny: around 2^-120 and subnormal
                float s = Math.scalb(1f, r.nextInt(-149, -95));
                for (int j = 0; j < 32; j++) x[o + j] = (float) (r.nextGaussian() * s);
            }
            case 9 -> { // huge: up to the largest float
                for (int j = 0; j < 32; j++) x[o + j] = (float) (r.nextDouble(-1, 1) * Float.MAX_VALUE);
            }
            case 10 -> { // any bit pattern
                for (int j = 0; j < 32; j++) x[o + j] = Float.intBitsToFloat(r.nextInt());
            }
            default -> { // MXFP4 maxima at the edge of the fast path: significands near 2, exponents near 2^-100
                float amax = Math.scalb(r.nextBoolean() ? 1.984375f : Math.nextUp(1.984375f), r.nextInt(-102, 128));
                for (int j = 0; j < 32; j++) x[o + j] = boundary(GgmlType.MXFP4, amax, r);
                x[o + r.nextInt(32)] = r.nextBoolean() ? amax : -amax;
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "MXFP4"})
    void vectorQuantizerGivesTheScalarBytes(GgmlType type) {
        Random r = new Random(1234 + type.id);
        int blocks = 20_000, srcOffset = 3;
        float[] x = new float[srcOffset + blocks * 32];
        for (int b = 0; b < blocks; b++) block(type, x, srcOffset + 32 * b, r);
        int bytes = (int) type.bytesFor(blocks * 32L), dstOffset = 5;
        byte[] s = new byte[dstOffset + bytes + 3], v = new byte[dstOffset + bytes + 3];
        scalar(type).quantize(x, srcOffset, MemorySegment.ofArray(s), dstOffset, blocks * 32);
        vector(type).quantize(x, srcOffset, MemorySegment.ofArray(v), dstOffset, blocks * 32);
        for (int b = 0; b < blocks; b++) {
            int p = dstOffset + b * type.blockBytes;
            if (!Arrays.equals(s, p, p + type.blockBytes, v, p, p + type.blockBytes)) {
                float[] in = Arrays.copyOfRange(x, srcOffset + 32 * b, srcOffset + 32 * b + 32);
                fail(type + " block " + b + " " + Arrays.toString(in) + ": scalar "
                        + java.util.HexFormat.of().formatHex(s, p, p + type.blockBytes) + ", vector "
                        + java.util.HexFormat.of().formatHex(v, p, p + type.blockBytes));
            }
        }
        assertArrayEquals(s, v); // and nothing written outside the blocks
        // the public entry point (SIMD where the hardware has it) gives the same bytes
        byte[] q = BlockFormats.quantize(type, x, srcOffset, blocks * 32);
        assertArrayEquals(Arrays.copyOfRange(s, dstOffset, dstOffset + bytes), q);
    }

    /** Short rows (1 to 5 blocks) at every small offset: the loops have no tail and no alignment assumption. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "MXFP4"})
    void shortRowsAtOddOffsets(GgmlType type) {
        Random r = new Random(99 + type.id);
        for (int blocks = 1; blocks <= 5; blocks++) {
            for (int off = 0; off < 9; off++) {
                float[] x = new float[off + blocks * 32 + 7];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                byte[] s = new byte[off + (int) type.bytesFor(blocks * 32L) + 4], v = s.clone();
                scalar(type).quantize(x, off, MemorySegment.ofArray(s), off, blocks * 32);
                vector(type).quantize(x, off, MemorySegment.ofArray(v), off, blocks * 32);
                assertArrayEquals(s, v, type + " " + blocks + " blocks at offset " + off);
            }
        }
    }

    @Test
    void vectorQ8_0RoundsHalvesAwayFromZero() {
        float[] x = new float[32];
        float[] head = {127f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, -0.5f, 126.5f, -126.5f, -0.4f, 1e-3f, 0.5f, 1.5f};
        System.arraycopy(head, 0, x, 0, head.length);
        byte[] q = new byte[34];
        Q8_0Format.quantizeVector(x, 0, MemorySegment.ofArray(q), 0, 32);
        assertArrayEquals(new byte[] {127, 3, -3, 0, 0, -1, 127, -127, 0, 0, 1, 2}, Arrays.copyOfRange(q, 2, 14));
    }
}
