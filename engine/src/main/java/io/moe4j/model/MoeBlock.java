package io.moe4j.model;

import io.moe4j.kernels.MatMul;
import io.moe4j.kernels.ops.Activations;

/**
 * The sparse feed-forward block: router → gating → top-k → optional renormalisation and scale → weighted sum of
 * the selected experts, plus an optional shared expert. Tokens of a batch are grouped by expert so that each
 * active expert's weights are read once per batch; unselected experts are never touched.
 */
final class MoeBlock {
    private MoeBlock() {
    }

    /** Adds the block's output for {@code n} normalised rows {@code x} to {@code residual}. */
    static void forward(ModelConfig cfg, ModelWeights.Layer lw, int layer, float[] x, int n, float[] residual,
                        RoutingObserver observer) {
        int nEmbd = cfg.embeddingLength();
        int nExp = cfg.expertCount(), k = cfg.expertUsedCount();
        float[] logits = new float[n * nExp];
        MatMul.mul(lw.router(), x, 0, n, logits, 0);
        FeedForwardBlock.addBias(logits, n, nExp, lw.routerBias(), 0);

        int[][] selected = new int[n][];
        float[][] weights = new float[n][];
        int[] tokensPerExpert = new int[nExp];
        float[] scratch = new float[nExp];
        for (int t = 0; t < n; t++) {
            selected[t] = new int[k];
            weights[t] = new float[k];
            route(cfg, logits, t * nExp, scratch, selected[t], weights[t]);
            for (int e : selected[t]) tokensPerExpert[e]++;
            if (observer != null) observer.onRouting(layer, t, logits, t * nExp, selected[t], weights[t]);
        }

        // The experts' weighted outputs are summed first and added to the residual once (as llama.cpp does), expert
        // by expert in ascending id, so each token sums in the same order whatever the batch.
        // Mixed in double: with renormalised weights that sum to exactly 1, k identical experts give back exactly
        // their common output (sparse upcycling without noise reproduces the dense model).
        double[] sum = new double[n * nEmbd];
        for (int e = 0; e < nExp; e++) {
            int m = tokensPerExpert[e];
            if (m == 0) continue;
            int[] rows = new int[m];
            float[] w = new float[m];
            float[] in = new float[m * nEmbd];
            int j = 0;
            for (int t = 0; t < n; t++) {
                for (int s = 0; s < k; s++) {
                    if (selected[t][s] == e) {
                        rows[j] = t;
                        w[j] = weights[t][s];
                        System.arraycopy(x, t * nEmbd, in, j * nEmbd, nEmbd);
                        j++;
                    }
                }
            }
            float[] out = new float[m * nEmbd];
            FeedForwardBlock.run(lw.experts(), e, in, m, out, cfg.arch().activation());
            for (int r = 0; r < m; r++) {
                int base = rows[r] * nEmbd;
                for (int i = 0; i < nEmbd; i++) sum[base + i] += (double) w[r] * out[r * nEmbd + i];
            }
        }

        if (lw.sharedExpert() != null) {
            float[] out = new float[n * nEmbd];
            FeedForwardBlock.run(lw.sharedExpert(), 0, x, n, out, cfg.arch().activation());
            for (int t = 0; t < n; t++) {
                float g = 1f;
                if (lw.sharedExpertGate() != null) {
                    float dot = 0;
                    for (int i = 0; i < nEmbd; i++) dot += lw.sharedExpertGate()[i] * x[t * nEmbd + i];
                    g = Activations.sigmoid(dot);
                }
                for (int i = 0; i < nEmbd; i++) sum[t * nEmbd + i] += (double) g * out[t * nEmbd + i];
            }
        }
        for (int i = 0; i < n * nEmbd; i++) residual[i] += (float) sum[i];
    }

    /**
     * Chooses the k experts of one token and their weights. Ties go to the lower expert id; {@code selected} comes
     * back in ascending id order.
     */
    static void route(ModelConfig cfg, float[] logits, int off, float[] scratch, int[] selected, float[] weights) {
        int nExp = cfg.expertCount(), k = selected.length;
        System.arraycopy(logits, off, scratch, 0, nExp);
        boolean softmaxFirst = cfg.arch().gating() == Architecture.Gating.SOFTMAX_THEN_TOP_K;
        if (softmaxFirst) Activations.softmax(scratch, 0, nExp);
        // top-k by repeated selection: k is small (2..8)
        boolean[] taken = new boolean[nExp];
        for (int s = 0; s < k; s++) {
            int best = -1;
            for (int e = 0; e < nExp; e++) {
                if (!taken[e] && (best < 0 || scratch[e] > scratch[best])) best = e;
            }
            taken[best] = true;
        }
        int j = 0;
        for (int e = 0; e < nExp; e++) {
            if (taken[e]) {
                selected[j] = e;
                weights[j] = scratch[e];
                j++;
            }
        }
        if (!softmaxFirst) Activations.softmax(weights, 0, k);
        if (cfg.normalizeTopK()) {
            float sum = 0;
            int largest = 0;
            for (int s = 0; s < k; s++) {
                sum += weights[s];
                if (weights[s] > weights[largest]) largest = s;
            }
            float others = 0;
            for (int s = 0; s < k; s++) {
                weights[s] /= sum;
                if (s != largest) others += weights[s];
            }
            // The largest weight is at least 1/k; taking it as 1 - others makes the weights sum to exactly 1.
            weights[largest] = 1f - others;
        }
        if (cfg.expertWeightsScale() != 1f) {
            for (int s = 0; s < k; s++) weights[s] *= cfg.expertWeightsScale();
        }
    }
}
