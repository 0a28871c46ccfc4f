package io.moe4j.model;

import io.moe4j.kernels.MoeTimings;

/**
 * Optional timing of whole forward calls, for benchmarks, beside the backend's own timers of the MoE routing,
 * grouping and combine ({@link MoeTimings}, switched on with this). Off by default; when on, the thread that runs
 * {@link Transformer#forward} adds to the counters (not meant for several forward calls at once).
 */
public final class Profile {
    private static volatile boolean enabled;
    static long forwardNanos;
    static long attentionNanos;

    private Profile() {
    }

    public static void enable(boolean on) {
        enabled = on;
        MoeTimings.enable(on);
    }

    public static boolean enabled() {
        return enabled;
    }

    static long now() {
        return enabled ? System.nanoTime() : 0;
    }

    public static void reset() {
        forwardNanos = 0;
        attentionNanos = 0;
        MoeTimings.reset();
    }

    /** Router matrix × vector, gating and top-k. */
    public static long routerNanos() {
        return MoeTimings.routeNanos();
    }

    /** The attention operation over the KV cache (not its projections), all layers. */
    public static long attentionNanos() {
        return attentionNanos;
    }

    /** Whole forward calls. */
    public static long forwardNanos() {
        return forwardNanos;
    }
}
