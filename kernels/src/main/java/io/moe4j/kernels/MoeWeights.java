package io.moe4j.kernels;

/**
 * The weights of one mixture-of-experts block.
 *
 * @param router     expertCount × width router matrix
 * @param routerBias expertCount floats added to the router logits, or null
 * @param experts    the stacked experts
 * @param shared     a shared expert applied to every token, or null
 * @param sharedGate width floats: the shared expert's output is scaled by sigmoid(sharedGate · x), or null (scale 1)
 */
public record MoeWeights(Weight router, Tensor routerBias, FeedForwardWeights experts, FeedForwardWeights shared,
                         Tensor sharedGate) {
    public int expertCount() {
        return experts.count();
    }
}
