package io.moe4j.kernels;

import io.moe4j.kernels.cpu.FeedForwardStats;

/**
 * Timers of the CPU backend's mixture-of-experts bookkeeping around the matrix products, for the bench: routing
 * (router product, top-k, shared gate), grouping tokens by expert, and the weighted combine. Off by default; when on,
 * the thread that runs the forward pass adds to them (not meant for concurrent forward passes).
 */
public final class MoeTimings {
    private MoeTimings() {
    }

    public static void enable(boolean on) {
        FeedForwardStats.enabled = on;
    }

    public static void reset() {
        FeedForwardStats.reset();
    }

    public static long routeNanos() {
        return FeedForwardStats.routeNanos;
    }

    public static long groupNanos() {
        return FeedForwardStats.groupNanos;
    }

    public static long combineNanos() {
        return FeedForwardStats.combineNanos;
    }
}
