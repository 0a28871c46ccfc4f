package io.moe4j.model;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.ops.Activations;

/**
 * The sparse feed-forward block: router → gating → top-k → optional renormalisation and scale → weighted sum of
 * the selected experts ({@link Backend#feedForward}: tokens grouped by expert, each active expert's weights read
 * once per batch, unselected experts never touched), plus an optional shared expert.
 */
final class MoeBlock {
    private MoeBlock() {
    }

    /** Per-thread routing arrays, grown to the largest batch seen. */
    static final class Buffers {
        float[] logits = new float[0], weights = new float[0], scratch = new float[0], sharedWeights = new float[0];
        int[] selected = new int[0];
        boolean[] taken = new boolean[0];

        void ensure(int n, int nExp, int k) {
            if (logits.length < n * nExp) logits = new float[n * nExp];
            if (selected.length < n * k) {
                selected = new int[n * k];
                weights = new float[n * k];
            }
            if (scratch.length < nExp) {
                scratch = new float[nExp];
                taken = new boolean[nExp];
            }
            if (sharedWeights.length < n) sharedWeights = new float[n];
        }
    }

    /** Adds the block's output for {@code n} normalised rows {@code x} to {@code residual}. */
    static void forward(Backend ops, ModelConfig cfg, ModelWeights.Layer lw, int layer, float[] x, int n, float[] residual,
                        RoutingObserver observer, Buffers b) {
        int nEmbd = cfg.embeddingLength();
        int nExp = cfg.expertCount(), k = cfg.expertUsedCount();
        Activations.Gated act = cfg.arch().activation() == Architecture.Activation.SWIGLU_CLAMPED
                ? Activations.Gated.SWIGLU_CLAMPED : Activations.Gated.SWIGLU;
        b.ensure(n, nExp, k);
        long t0 = Profile.now();
        ops.matmul(lw.router(), x, 0, n, b.logits, 0);
        ops.addBias(b.logits, n, nExp, lw.routerBias());
        for (int t = 0; t < n; t++) {
            route(cfg, b.logits, t * nExp, b.scratch, b.taken, b.selected, b.weights, t * k, k);
            if (observer != null) {
                observer.onRouting(layer, t, b.logits, t * nExp, java.util.Arrays.copyOfRange(b.selected, t * k, t * k + k),
                        java.util.Arrays.copyOfRange(b.weights, t * k, t * k + k));
            }
        }
        if (t0 != 0) Profile.routerNanos += Profile.now() - t0;

        // The routed experts, then the shared one, mixed in double and added to the residual once (as llama.cpp adds
        // them), expert by expert in ascending id, so each token sums in the same order whatever the batch. With
        // renormalised weights that sum to exactly 1, k identical experts give back exactly their common output
        // (sparse upcycling without noise reproduces the dense model).
        if (lw.sharedExpert() != null) {
            for (int t = 0; t < n; t++) {
                float g = 1f;
                if (lw.sharedExpertGate() != null) {
                    float dot = 0;
                    for (int i = 0; i < nEmbd; i++) dot += lw.sharedExpertGate()[i] * x[t * nEmbd + i];
                    g = Activations.sigmoid(dot);
                }
                b.sharedWeights[t] = g;
            }
        }
        ops.feedForward(lw.experts(), act, x, n, k, b.selected, b.weights, lw.sharedExpert(), b.sharedWeights, residual);
    }

    /**
     * Chooses the k experts of one token and their weights. Ties go to the lower expert id; {@code selected} comes
     * back in ascending id order.
     */
    static void route(ModelConfig cfg, float[] logits, int off, float[] scratch, boolean[] taken, int[] selected,
                      float[] weights, int so, int k) {
        int nExp = cfg.expertCount();
        System.arraycopy(logits, off, scratch, 0, nExp);
        boolean softmaxFirst = cfg.arch().gating() == Architecture.Gating.SOFTMAX_THEN_TOP_K;
        if (softmaxFirst) Activations.softmax(scratch, 0, nExp);
        // top-k by repeated selection: k is small (2..8)
        java.util.Arrays.fill(taken, 0, nExp, false);
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
                selected[so + j] = e;
                weights[so + j] = scratch[e];
                j++;
            }
        }
        if (!softmaxFirst) Activations.softmax(weights, so, k);
        if (cfg.normalizeTopK()) {
            float sum = 0;
            int largest = 0;
            for (int s = 0; s < k; s++) {
                sum += weights[so + s];
                if (weights[so + s] > weights[so + largest]) largest = s;
            }
            float others = 0;
            for (int s = 0; s < k; s++) {
                weights[so + s] /= sum;
                if (s != largest) others += weights[so + s];
            }
            // The largest weight is at least 1/k; taking it as 1 - others makes the weights sum to exactly 1.
            weights[so + largest] = 1f - others;
        }
        if (cfg.expertWeightsScale() != 1f) {
            for (int s = 0; s < k; s++) weights[so + s] *= cfg.expertWeightsScale();
        }
    }
}
