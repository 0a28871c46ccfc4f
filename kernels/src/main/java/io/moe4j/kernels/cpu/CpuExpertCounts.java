package io.moe4j.kernels.cpu;

import io.moe4j.kernels.ExpertCounts;

import java.util.concurrent.atomic.AtomicLongArray;

/** Expert selection counters of the CPU backend: one atomic counter per layer and expert. */
final class CpuExpertCounts implements ExpertCounts {
    private final int layers, experts;
    private final AtomicLongArray counts;

    CpuExpertCounts(int layers, int experts) {
        if (layers < 0 || experts < 0) throw new IllegalArgumentException(layers + " layers of " + experts + " experts");
        this.layers = layers;
        this.experts = experts;
        this.counts = new AtomicLongArray(Math.max(1, layers * experts));
    }

    void add(int layer, int[] selected, int from, int n) {
        for (int i = from; i < from + n; i++) counts.incrementAndGet(layer * experts + selected[i]);
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public int experts() {
        return experts;
    }

    @Override
    public long[][] snapshot() {
        long[][] s = new long[layers][experts];
        for (int l = 0; l < layers; l++) for (int e = 0; e < experts; e++) s[l][e] = counts.get(l * experts + e);
        return s;
    }
}
