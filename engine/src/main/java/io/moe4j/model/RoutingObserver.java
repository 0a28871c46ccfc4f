package io.moe4j.model;

import io.moe4j.kernels.RoutingTrace;

/** Sees every routing decision of the MoE blocks, copied to the host (tests compare them with llama.cpp's). */
@FunctionalInterface
public interface RoutingObserver extends RoutingTrace {
}
