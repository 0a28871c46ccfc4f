package io.moe4j.kernels;

/**
 * How a mixture-of-experts block turns router logits into the {@code k} experts of a token and their weights.
 *
 * @param gating    the order of softmax and top-k
 * @param k         experts per token
 * @param normalize whether the k weights are rescaled to sum to exactly 1
 * @param scale     a factor on every weight after that (1: none)
 */
public record Routing(Gating gating, int k, boolean normalize, float scale) {
    public enum Gating {
        /** softmax over all experts, then the top k of the probabilities */
        SOFTMAX_THEN_TOP_K,
        /** top k of the logits, then softmax over those k (gpt-oss) */
        TOP_K_THEN_SOFTMAX
    }

    public Routing {
        if (k <= 0) throw new IllegalArgumentException("a token uses at least one expert, got k = " + k);
    }
}
