package io.moe4j.tools.synth;

import io.moe4j.tools.TensorPlan;

/**
 * Deterministic random rows: every row has its own generator state derived from (seed, tensor, row), so a tensor's
 * values do not depend on how it is split into chunks or on the thread count. Values are {@code mean + std * t}
 * with t from a triangular distribution of unit variance (the sum of two uniforms: cheap, bounded, bell-shaped
 * enough for weights), two values per 64-bit SplitMix64 output.
 */
public final class RandomRows implements TensorPlan.Rows {
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
        for (int r = 0; r < nRows; r++) row(firstRow + r, dst, r * cols);
    }

    private void row(long row, float[] dst, int off) {
        long x = mix(tensorSeed ^ (row * 0xD1B54A32D192ED03L));
        float m = mean, k = scale;
        int i = 0;
        for (; i + 1 < cols; i += 2) {
            x += 0x9E3779B97F4A7C15L;
            long z = mix(x);
            int a = (int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535;
            int b = (int) ((z >>> 32) & 0xFFFF) + (int) (z >>> 48) - 65535;
            dst[off + i] = m + a * k;
            dst[off + i + 1] = m + b * k;
        }
        if (i < cols) {
            long z = mix(x + 0x9E3779B97F4A7C15L);
            dst[off + i] = m + ((int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) - 65535) * k;
        }
    }
}
