package io.moe4j.kernels;

/**
 * Every routing decision of a {@link Backend#moe} call, copied to the host: for verification against a reference
 * (llama.cpp's router choices) and for tools that print them. Costs a copy per token and layer; the server counts
 * selections with {@link ExpertCounts} instead.
 */
@FunctionalInterface
public interface RoutingTrace {
    /**
     * @param layer        block index
     * @param token        index of the token within the batch
     * @param routerLogits the router's logits for this token (bias included), {@code expertCount} floats at {@code offset}
     * @param selected     the chosen experts, ascending ids
     * @param weights      their weights, aligned with {@code selected}
     */
    void onRouting(int layer, int token, float[] routerLogits, int offset, int[] selected, float[] weights);
}
