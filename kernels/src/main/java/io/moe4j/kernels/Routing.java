package io.moe4j.kernels;

/**
 * How a mixture-of-experts block turns router logits into the {@code k} experts of a token and their weights.
 * In order: the gate turns the logits into probabilities p; the selection scores are s = p plus the block's
 * selection bias ({@link MoeWeights#selectionBias}, when it has one: it only chooses, it never weighs); with expert
 * groups, experts are split into {@code groups} groups of consecutive ids, each scored by the sum of its two best s,
 * and only the {@code groupsUsed} best groups stay eligible; the k eligible experts of largest s are chosen (ties to
 * the lower id, groups too); their weights are their p (for {@link Gating#TOP_K_THEN_SOFTMAX}: the softmax of their
 * logits), divided by their sum when {@code normalize} (the sum clamped below at 2⁻¹⁴, as llama.cpp does), times
 * {@code scale}.
 *
 * @param gating     the gate, and whether it comes before or after the choice
 * @param k          experts per token
 * @param normalize  whether the k weights are rescaled to sum to 1
 * @param scale      a factor on every weight after that (1: none)
 * @param groups     expert groups (0 or 1: none; DeepSeek-V3's n_group)
 * @param groupsUsed groups a token chooses from (DeepSeek-V3's topk_group); ignored without groups
 */
public record Routing(Gating gating, int k, boolean normalize, float scale, int groups, int groupsUsed) {
    public enum Gating {
        /** softmax over all experts, then the top k of the probabilities */
        SOFTMAX_THEN_TOP_K,
        /** top k of the logits, then softmax over those k (gpt-oss) */
        TOP_K_THEN_SOFTMAX,
        /** sigmoid of every logit, then the top k of those (DeepSeek-V3) */
        SIGMOID_THEN_TOP_K
    }

    /** The smallest sum that normalised weights are divided by (llama.cpp's clamp, 6.1e-5: the least normal half). */
    public static final float MIN_WEIGHT_SUM = 0x1p-14f;

    public Routing {
        if (k <= 0) throw new IllegalArgumentException("a token uses at least one expert, got k = " + k);
        if (groups < 0 || groups > 1 && (groupsUsed < 1 || groupsUsed > groups)) {
            throw new IllegalArgumentException(groupsUsed + " of " + groups + " expert groups");
        }
    }

    /** Routing without expert groups. */
    public Routing(Gating gating, int k, boolean normalize, float scale) {
        this(gating, k, normalize, scale, 0, 0);
    }

    /** Whether experts are chosen from the best groups only. */
    public boolean grouped() {
        return groups > 1;
    }
}
