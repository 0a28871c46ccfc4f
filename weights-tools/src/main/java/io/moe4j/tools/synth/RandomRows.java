package io.moe4j.tools.synth;

import io.moe4j.tools.TensorPlan;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.XOR;

/**
 * Deterministic random rows: every row has its own generator state derived from (seed, tensor, row), so a tensor's
 * values do not depend on how it is split into chunks or on the thread count. Values are {@code mean + std * t}
 * with t from a triangular distribution of unit variance (the sum of two uniforms: cheap, bounded, bell-shaped
 * enough for weights), two values per 64-bit SplitMix64 output. The generators of consecutive value pairs are
 * independent (SplitMix64 hashes a counter), so where the hardware has 256-bit vectors or wider the pairs are
 * computed a vector at a time, giving the same floats (a test compares the two).
 */
public final class RandomRows implements TensorPlan.Rows {
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final boolean VECTOR = L.vectorBitSize() >= 256 && !Boolean.getBoolean("moe4j.kernels.scalar");
    private static final long GAMMA = 0x9E3779B97F4A7C15L;
    /** Lane k: (k + 1) * GAMMA, the counter steps of the pairs of one vector. */
    private static final LongVector STEPS = LongVector.fromArray(L, steps(L.length()), 0);

    private static long[] steps(int n) {
        long[] s = new long[n];
        for (int k = 0; k < n; k++) s[k] = (k + 1) * GAMMA;
        return s;
    }

    private static final double TRIANGLE_STD = Math.sqrt(1.0 / 6.0); // of (u1 + u2 - 1) with u uniform on (0, 1)

    private final long tensorSeed;
    private final int cols;
    private final float mean;
    private final float scale; // std / (TRIANGLE_STD * 65535)

    public RandomRows(long seed, int tensorIndex, int cols, double mean, double std) {
        this.tensorSeed = mix(seed * 0x9E3779B97F4A7C15L + mix(tensorIndex + 0x632BE59BD9B4E019L));
        this.cols = cols;
        this.mean = (float) mean;
        this.scale = (float) (std / (TRIANGLE_STD * 65535.0));
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public void fill(long firstRow, int nRows, float[] dst) {
        for (int r = 0; r < nRows; r++) {
            if (VECTOR) {
                rowVector(firstRow + r, dst, r * cols);
            } else {
                rowScalar(firstRow + r, dst, r * cols);
            }
        }
    }

    /** The reference: one pair at a time. */
    void rowScalar(long row, float[] dst, int off) {
        rowTail(mix(tensorSeed ^ (row * 0xD1B54A32D192ED03L)), dst, off, 0);
    }

    /** Values i.. of a row whose counter is at {@code x} (the pairs before i drawn). */
    private void rowTail(long x, float[] dst, int off, int i) {
        float m = mean, k = scale;
        for (; i + 1 < cols; i += 2) {
            x += GAMMA;
            long z = mix(x);
            int a = (int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535;
            int b = (int) ((z >>> 32) & 0xFFFF) + (int) (z >>> 48) - 65535;
            dst[off + i] = m + a * k;
            dst[off + i + 1] = m + b * k;
        }
        if (i < cols) {
            long z = mix(x + GAMMA);
            dst[off + i] = m + ((int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535) * k;
        }
    }

    /**
     * The same floats, a vector of pairs at a time: lane k hashes the counter of pair k, and the 64-bit result read
     * as two 32-bit lanes (low half first) gives the pair's two values with one formula, (h & 0xFFFF) + (h >>> 16),
     * already in their order in the row.
     */
    void rowVector(long row, float[] dst, int off) {
        long x = mix(tensorSeed ^ (row * 0xD1B54A32D192ED03L));
        int pairs = L.length(), step = 2 * pairs, i = 0;
        LongVector xs = STEPS.add(x);
        long stride = pairs * GAMMA;
        FloatVector m = FloatVector.broadcast(F, mean), k = FloatVector.broadcast(F, scale);
        for (; i + step <= cols; i += step) {
            LongVector z = xs;
            z = z.lanewise(XOR, z.lanewise(LSHR, 30)).mul(0xBF58476D1CE4E5B9L);
            z = z.lanewise(XOR, z.lanewise(LSHR, 27)).mul(0x94D049BB133111EBL);
            z = z.lanewise(XOR, z.lanewise(LSHR, 31));
            IntVector h = z.reinterpretAsInts();
            IntVector t = h.and(0xFFFF).add(h.lanewise(LSHR, 16)).sub(65535);
            ((FloatVector) t.convert(I2F, 0)).mul(k).add(m).intoArray(dst, off + i);
            xs = xs.add(stride);
        }
        rowTail(x + (long) (i / 2) * GAMMA, dst, off, i);
    }
}
