package io.moe4j.kernels.cpu;

/**
 * Optional timing of the CPU feed-forward operation's own bookkeeping, for benchmarks: routing (router product,
 * top-k, shared gate), grouping the (token, expert)
 * pairs by expert and gathering their rows, and the combine (weighted scatter-add into the residual stream). Off by
 * default; when on, the thread that calls the operation adds to the counters (not meant for concurrent calls).
 */
public final class FeedForwardStats {
    public static volatile boolean enabled;
    public static long routeNanos, groupNanos, combineNanos;

    private FeedForwardStats() {
    }

    public static void reset() {
        routeNanos = groupNanos = combineNanos = 0;
    }
}
