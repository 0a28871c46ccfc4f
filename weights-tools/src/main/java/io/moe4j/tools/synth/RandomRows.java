package io.moe4j.tools.synth;


import io.moe4j.tools.TensorPlan;

/**
 * Deterministic random rows: every row has its own generator state derived from (seed, tensor, row), so a tensor's
 * values do not depend on how it is split into chunks or on the thread count. Values are {@code mean + std * t}
 * with t of unit variance from {@link TriangularNoise} (the sum of two uniforms: cheap, bounded, bell-shaped enough
 * for weights).
 */
public final class RandomRows implements TensorPlan.Rows {
    private static final double TRIANGLE_STD = Math.sqrt(1.0 / 6.0); // of (u1 + u2 - 1) with u uniform on (0, 1)

    private final long tensorSeed;
    private final int cols;
    private final float mean;
    private final float scale; // std / (TRIANGLE_STD * 65535)

    public RandomRows(long seed, int tensorIndex, int cols, double mean, double std) {
        this.tensorSeed = TriangularNoise.mix(seed * TriangularNoise.GAMMA + TriangularNoise.mix(tensorIndex + 0x632BE59BD9B4E019L));
        this.cols = cols;
        this.mean = (float) mean;
        this.scale = (float) (std / (TRIANGLE_STD * 65535.0));
    }

    @Override
    public void fill(long firstRow, int nRows, float[] dst) {
        for (int r = 0; r < nRows; r++) row(firstRow + r, dst, r * cols);
    }

    /** One row into {@code dst[off .. off + cols)}. */
    void row(long row, float[] dst, int off) {
        TriangularNoise.fill(TriangularNoise.mix(tensorSeed ^ (row * 0xD1B54A32D192ED03L)), mean, scale, dst, off, cols);
    }
}
