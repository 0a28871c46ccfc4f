package io.moe4j.kernels.ops;

/** Root-mean-square normalisation: y = x / sqrt(mean(x^2) + eps) * weight. */
public final class RmsNorm {
    private RmsNorm() {
    }

    /** Normalises {@code n} floats of {@code x} at {@code xOff} into {@code out} at {@code outOff}; weight may be null. */
    public static void apply(float[] out, int outOff, float[] x, int xOff, float[] weight, int n, float eps) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            ss += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt(ss / n + eps));
        if (weight == null) {
            for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * scale;
        } else {
            for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * scale * weight[i];
        }
    }

    /** Normalises each of {@code rows} consecutive rows of {@code n} floats in place. */
    public static void applyRows(float[] x, int off, int rows, int n, float[] weight, float eps) {
        for (int r = 0; r < rows; r++) apply(x, off + r * n, x, off + r * n, weight, n, eps);
    }
}
