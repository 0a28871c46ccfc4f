package io.moe4j.model;

/** Sees every routing decision of the MoE blocks (tests compare them with llama.cpp's; metrics count them). */
@FunctionalInterface
public interface RoutingObserver {
    /**
     * @param layer        block index
     * @param token        index of the token within the batch
     * @param routerLogits the router's logits for this token (bias included), {@code expertCount} floats at {@code offset}
     * @param selected     the chosen experts, ascending ids
     * @param weights      their weights, aligned with {@code selected}
     */
    void onRouting(int layer, int token, float[] routerLogits, int offset, int[] selected, float[] weights);
}
