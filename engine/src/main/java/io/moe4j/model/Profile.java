package io.moe4j.model;

/**
 * Optional timing of the parts of the forward pass that are neither matrix products nor attention, for benchmarks:
 * the MoE router (its matrix × vector, gating, top-k and grouping) and the combine (weighted scatter-add of the
 * expert outputs). Off by default; when on, the thread that runs {@link Transformer#forward} adds to the counters
 * (not meant for several forward calls at once).
 */
public final class Profile {
    private static volatile boolean enabled;
    static long routerNanos, combineNanos, forwardNanos;

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
        routerNanos = combineNanos = forwardNanos = 0;
    }

    /** Router matrix × vector, gating, top-k and grouping of tokens by expert. */
    public static long routerNanos() {
        return routerNanos;
    }

    /** Weighted scatter-add of the expert outputs into the residual stream. */
    public static long combineNanos() {
        return combineNanos;
    }

    /** Whole forward calls. */
    public static long forwardNanos() {
        return forwardNanos;
    }
}
