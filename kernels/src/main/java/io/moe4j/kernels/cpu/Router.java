package io.moe4j.kernels.cpu;

import io.moe4j.kernels.Routing;
import io.moe4j.kernels.ops.Activations;

import java.util.Arrays;

/** Top-k routing of one token on the CPU: gating, selection, renormalisation and scale as {@link Routing} says. */
final class Router {
    private Router() {
    }

    /**
     * Chooses the k experts of one token from {@code nExp} logits at {@code off} and their weights. Ties go to the
     * lower expert id; {@code selected} comes back in ascending id order. {@code scratch} and {@code taken} hold at
     * least {@code nExp}.
     */
    static void route(Routing routing, float[] logits, int off, int nExp, float[] scratch, boolean[] taken,
                      int[] selected, float[] weights, int so) {
        int k = routing.k();
        System.arraycopy(logits, off, scratch, 0, nExp);
        boolean softmaxFirst = routing.gating() == Routing.Gating.SOFTMAX_THEN_TOP_K;
        if (softmaxFirst) Activations.softmax(scratch, 0, nExp);
        // top-k by repeated selection: k is small (2..8)
        Arrays.fill(taken, 0, nExp, false);
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
        if (routing.normalize()) {
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
        if (routing.scale() != 1f) {
            for (int s = 0; s < k; s++) weights[so + s] *= routing.scale();
        }
    }
}
