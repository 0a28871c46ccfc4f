package io.moe4j.kernels.cpu;

import io.moe4j.kernels.Routing;
import io.moe4j.kernels.ops.Activations;

import java.util.Arrays;

/** Top-k routing of one token on the CPU: gating, selection, renormalisation and scale as {@link Routing} says. */
final class Router {
    private Router() {
    }

    /** A thread's scratch arrays for {@link #route}, grown to the most experts seen. */
    static final class Scratch {
        float[] probs = new float[0], scores = new float[0], groupScores = new float[0];
        boolean[] taken = new boolean[0];

        Scratch ensure(int nExp) {
            if (probs.length < nExp) {
                probs = new float[nExp];
                scores = new float[nExp];
                groupScores = new float[nExp];
                taken = new boolean[nExp];
            }
            return this;
        }
    }

    /**
     * Chooses the k experts of one token from {@code nExp} logits at {@code off} and their weights. {@code bias}
     * (may be null) is the selection bias, added to the gated probabilities to choose only. Ties go to the lower
     * expert (and group) id; {@code selected} comes back in ascending id order.
     */
    static void route(Routing routing, float[] logits, int off, int nExp, float[] bias, Scratch s,
                      int[] selected, float[] weights, int so) {
        int k = routing.k();
        s.ensure(nExp);
        float[] p = s.probs, score = s.scores;
        boolean[] taken = s.taken;
        System.arraycopy(logits, off, p, 0, nExp);
        switch (routing.gating()) {
            case SOFTMAX_THEN_TOP_K -> Activations.softmax(p, 0, nExp);
            case SIGMOID_THEN_TOP_K -> {
                for (int e = 0; e < nExp; e++) p[e] = Activations.sigmoid(p[e]);
            }
            case TOP_K_THEN_SOFTMAX -> {
            }
        }
        for (int e = 0; e < nExp; e++) score[e] = bias != null ? p[e] + bias[e] : p[e];
        if (routing.grouped()) keepBestGroups(routing, score, nExp, s);
        // top-k by repeated selection: k is small (2..8)
        Arrays.fill(taken, 0, nExp, false);
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < nExp; e++) {
                if (!taken[e] && (best < 0 || score[e] > score[best])) best = e;
            }
            taken[best] = true;
        }
        int j = 0;
        for (int e = 0; e < nExp; e++) {
            if (taken[e]) {
                selected[so + j] = e;
                weights[so + j] = p[e];
                j++;
            }
        }
        if (routing.gating() == Routing.Gating.TOP_K_THEN_SOFTMAX) Activations.softmax(weights, so, k);
        if (routing.normalize()) {
            float sum = 0;
            int largest = 0;
            for (int i = 0; i < k; i++) {
                sum += weights[so + i];
                if (weights[so + i] > weights[so + largest]) largest = i;
            }
            if (sum < Routing.MIN_WEIGHT_SUM) {
                for (int i = 0; i < k; i++) weights[so + i] /= Routing.MIN_WEIGHT_SUM;
            } else {
                float others = 0;
                for (int i = 0; i < k; i++) {
                    weights[so + i] /= sum;
                    if (i != largest) others += weights[so + i];
                }
                // The largest weight is at least 1/k; taking it as 1 - others makes the weights sum to exactly 1.
                weights[so + largest] = 1f - others;
            }
        }
        if (routing.scale() != 1f) {
            for (int i = 0; i < k; i++) weights[so + i] *= routing.scale();
        }
    }

    /**
     * Expert groups: each group of consecutive experts is scored by the sum of its two best selection scores (its
     * one score for a group of one), the {@code groupsUsed} best groups are kept and the scores of every other
     * group's experts become -∞, so that none of them is chosen.
     */
    private static void keepBestGroups(Routing routing, float[] score, int nExp, Scratch s) {
        int groups = routing.groups(), size = nExp / groups;
        if (size * groups != nExp) throw new IllegalArgumentException(nExp + " experts in " + groups + " groups");
        float[] gs = s.groupScores;
        boolean[] kept = s.taken; // free until the experts are chosen
        for (int g = 0; g < groups; g++) {
            float best = Float.NEGATIVE_INFINITY, second = Float.NEGATIVE_INFINITY;
            for (int e = g * size; e < (g + 1) * size; e++) {
                float v = score[e];
                if (v > best) {
                    second = best;
                    best = v;
                } else if (v > second) {
                    second = v;
                }
            }
            gs[g] = size == 1 ? best : best + second;
            kept[g] = false;
        }
        for (int j = 0; j < routing.groupsUsed(); j++) {
            int best = -1;
            for (int g = 0; g < groups; g++) if (!kept[g] && (best < 0 || gs[g] > gs[best])) best = g;
            kept[best] = true;
        }
        for (int g = 0; g < groups; g++) {
            if (!kept[g]) Arrays.fill(score, g * size, (g + 1) * size, Float.NEGATIVE_INFINITY);
        }
    }
}
