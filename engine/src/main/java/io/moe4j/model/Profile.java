package io.moe4j.model;

/**
 * Optional timing of parts of the forward pass, for benchmarks: the MoE router (its matrix × vector, gating and
 * top-k) and whole forward calls (the grouping and combine of the experts are timed by
 * {@link io.moe4j.kernels.cpu.FeedForwardStats}). Off by default; when on, the thread that runs {@link Transformer#forward} adds to the counters
 * (not meant for several forward calls at once).
 */
public final class Profile {
    private static volatile boolean enabled;
    static long routerNanos, forwardNanos;

    private Profile() {
    }

    public static void enable(boolean on) {
        enabled = on;
    }

    public static boolean enabled() {
        return enabled;
    }

    static long now() {
        return enabled ? System.nanoTime() : 0;
    }

    public static void reset() {
        routerNanos = forwardNanos = 0;
    }

    /** Router matrix × vector, gating and top-k. */
    public static long routerNanos() {
        return routerNanos;
    }

    /** Whole forward calls. */
    public static long forwardNanos() {
        return forwardNanos;
    }
}
