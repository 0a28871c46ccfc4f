package io.moe4j.tools.synth;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.XOR;

/**
 * Deterministic noise from a SplitMix64 counter: value i is {@code mean + scale * t} with t the sum of two 16-bit
 * uniforms less 65535 (a triangular distribution: cheap, bounded, bell-shaped enough for random weights), two values
 * per 64-bit hash of the counter, which advances by {@link #GAMMA} per pair. The hashes of consecutive pairs are
 * independent, so where the hardware has 256-bit vectors or wider a vector of pairs is computed at a time, giving
 * the same floats as the scalar reference (a test compares the two).
 */
public final class TriangularNoise {
    public static final long GAMMA = 0x9E3779B97F4A7C15L;
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final boolean VECTOR = L.vectorBitSize() >= 256 && !Boolean.getBoolean("moe4j.kernels.scalar");
    /** Lane k: (k + 1) * GAMMA, the counter steps of the pairs of one vector. */
    private static final LongVector STEPS = LongVector.fromArray(L, steps(L.length()), 0);

    private TriangularNoise() {
    }

    private static long[] steps(int n) {
        long[] s = new long[n];
        for (int k = 0; k < n; k++) s[k] = (k + 1) * GAMMA;
        return s;
    }

    /** SplitMix64's output function. */
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Fills {@code dst[off .. off + n)} from the counter {@code x} (before the first pair). */
    public static void fill(long x, float mean, float scale, float[] dst, int off, int n) {
        if (VECTOR) fillVector(x, mean, scale, dst, off, n);
        else fillScalar(x, mean, scale, dst, off, n, 0);
    }

    /** The reference, one pair at a time, from value i on (the counter {@code x} already past the pairs before i). */
    static void fillScalar(long x, float mean, float scale, float[] dst, int off, int n, int i) {
        for (; i + 1 < n; i += 2) {
            x += GAMMA;
            long z = mix(x);
            int a = (int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535;
            int b = (int) ((z >>> 32) & 0xFFFF) + (int) (z >>> 48) - 65535;
            dst[off + i] = mean + a * scale;
            dst[off + i + 1] = mean + b * scale;
        }
        if (i < n) {
            long z = mix(x + GAMMA);
            dst[off + i] = mean + ((int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535) * scale;
        }
    }

    /**
     * The same floats, a vector of pairs at a time: lane k hashes the counter of pair k, and the 64-bit result read
     * as two 32-bit lanes (low half first) gives the pair's two values with one formula, (h & 0xFFFF) + (h >>> 16),
     * already in their order.
     */
    static void fillVector(long x, float mean, float scale, float[] dst, int off, int n) {
        int pairs = L.length(), step = 2 * pairs, i = 0;
        LongVector xs = STEPS.add(x);
        long stride = pairs * GAMMA;
        FloatVector m = FloatVector.broadcast(F, mean), k = FloatVector.broadcast(F, scale);
        for (; i + step <= n; i += step) {
            LongVector z = xs;
            z = z.lanewise(XOR, z.lanewise(LSHR, 30)).mul(0xBF58476D1CE4E5B9L);
            z = z.lanewise(XOR, z.lanewise(LSHR, 27)).mul(0x94D049BB133111EBL);
            z = z.lanewise(XOR, z.lanewise(LSHR, 31));
            IntVector h = z.reinterpretAsInts();
            IntVector t = h.and(0xFFFF).add(h.lanewise(LSHR, 16)).sub(65535);
            ((FloatVector) t.convert(I2F, 0)).mul(k).add(m).intoArray(dst, off + i);
            xs = xs.add(stride);
        }
        fillScalar(x + (long) (i / 2) * GAMMA, mean, scale, dst, off, n, i);
    }
}
