package io.moe4j.kernels;

/**
 * The weights of one mixture-of-experts block.
 *
 * @param router        expertCount × width router matrix
 * @param routerBias    expertCount floats added to the router logits, or null
 * @param experts       the stacked experts
 * @param shared        a shared expert applied to every token, or null
 * @param sharedGate    width floats: the shared expert's output is scaled by sigmoid(sharedGate · x), or null (scale 1)
 * @param selectionBias expertCount floats added to the gated probabilities to choose the experts, not to weigh them
 *                      (DeepSeek-V3's e_score_correction_bias, llama.cpp's exp_probs_b), or null
 */
public record MoeWeights(Weight router, Tensor routerBias, FeedForwardWeights experts, FeedForwardWeights shared,
                         Tensor sharedGate, Tensor selectionBias) {

    /** A block without a selection bias. */
    public MoeWeights(Weight router, Tensor routerBias, FeedForwardWeights experts, FeedForwardWeights shared, Tensor sharedGate) {
        this(router, routerBias, experts, shared, sharedGate, null);
    }

    public int expertCount() {
        return experts.count();
    }
}
