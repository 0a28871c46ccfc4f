package io.moe4j.kernels;

/**
 * How many tokens each expert of each layer was routed to, counted by a backend's {@link Backend#moe} where the
 * routing happens (on a device, in device memory) and read only when asked.
 */
public interface ExpertCounts {
    int layers();

    int experts();

    /** The counts now: {@code [layer][expert]}. */
    long[][] snapshot();
}
