package io.moe4j.model;

import io.moe4j.kernels.MatMul;
import io.moe4j.kernels.ops.Activations;

/** A gated feed-forward network (one dense FFN, or one expert of a stack) over a batch of rows. */
final class FeedForwardBlock {
    private FeedForwardBlock() {
    }

    /**
     * out[m rows of nEmbd] = down(act(gate(x)) * up(x)) for expert {@code e} of {@code ff} (0 for a dense FFN),
     * biases added where present.
     */
    static void run(ModelWeights.FeedForward ff, int e, float[] x, int m, float[] out, Architecture.Activation act) {
        int hidden = ff.hidden();
        int nEmbd = ff.gate().cols();
        float[] g = new float[m * hidden];
        float[] u = new float[m * hidden];
        MatMul.mul(ff.gate().rows(e * hidden, hidden), x, 0, m, g, 0);
        MatMul.mul(ff.up().rows(e * hidden, hidden), x, 0, m, u, 0);
        addBias(g, m, hidden, ff.gateBias(), e * hidden);
        addBias(u, m, hidden, ff.upBias(), e * hidden);
        for (int r = 0; r < m; r++) {
            switch (act) {
                case SWIGLU -> Activations.swiglu(g, r * hidden, u, r * hidden, hidden);
                case SWIGLU_CLAMPED -> Activations.swigluClamped(g, r * hidden, u, r * hidden, hidden,
                        ModelConfig.SWIGLU_ALPHA, ModelConfig.SWIGLU_LIMIT);
            }
        }
        MatMul.mul(ff.down().rows(e * nEmbd, nEmbd), g, 0, m, out, 0);
        addBias(out, m, nEmbd, ff.downBias(), e * nEmbd);
    }

    static void addBias(float[] x, int rows, int n, float[] bias, int biasOff) {
        if (bias == null) return;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < n; i++) x[r * n + i] += bias[biasOff + i];
        }
    }
}
