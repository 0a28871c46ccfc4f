package io.moe4j.model;

import io.moe4j.kernels.Rope;

/**
 * What distinguishes one decoder architecture from another, as data. The forward pass ({@link Transformer})
 * reads these switches; optional tensors (biases, sinks, shared experts) are used when the file has them.
 *
 * @param name               the value of {@code general.architecture}
 * @param ropeStyle          which dimensions RoPE pairs up
 * @param qkNorm             RMSNorm of queries and keys before RoPE
 * @param gating             how router logits become expert weights
 * @param normalizeTopK      whether the k selected weights are rescaled to sum to 1 (metadata
 *                           {@code <arch>.expert_weights_norm} overrides it)
 * @param activation         the gated activation of every feed-forward block
 * @param ffnNormTensor      the per-layer tensor that normalises the FFN input
 * @param slidingWindowPeriod 0: no sliding window; p &gt; 0: layer i uses the window when i % p &lt; p - 1
 * @param attention          how queries, keys and values are formed and cached
 * @param files              how its files are laid out: optional tensors, metadata keys and Hugging Face names
 *                           (what weights-tools needs to write and read them)
 */
public record Architecture(String name, Rope.Style ropeStyle, QkNorm qkNorm, Gating gating, boolean normalizeTopK,
                           Activation activation, String ffnNormTensor, int slidingWindowPeriod, AttentionKind attention,
                           FileLayout files) {

    public enum AttentionKind {
        /** q, k and v projections (attn_q, attn_k, attn_v), grouped-query attention over cached keys and values */
        GROUPED_QUERY,
        /**
         * DeepSeek's multi-head latent attention in llama.cpp's absorbed form: one cached row per position, the
         * normalised latent c followed by the roped key part; the value is c itself ({@link ModelConfig.Mla})
         */
        LATENT
    }

    public enum QkNorm {
        NONE,
        /** one weight vector of head size, applied to every head (Qwen3) */
        PER_HEAD,
        /** one weight vector over the whole projection (OLMoE) */
        WHOLE
    }

    public enum Gating {
        /** softmax over all experts, then the top k of the probabilities */
        SOFTMAX_THEN_TOP_K,
        /** top k of the logits, then softmax over those k (gpt-oss) */
        TOP_K_THEN_SOFTMAX,
        /** sigmoid of every logit, then the top k of those (DeepSeek-V3) */
        SIGMOID_THEN_TOP_K
    }

    public enum Activation {
        SWIGLU,
        /** gpt-oss: clamped SwiGLU with alpha 1.702, limit 7 and (up + 1) */
        SWIGLU_CLAMPED
    }

    /** The common case: Llama-style blocks with NORM RoPE, softmax routing and renormalised top-k weights. */
    public static Architecture llamaLike(String name, FileLayout files) {
        return new Architecture(name, Rope.Style.NORM, QkNorm.NONE, Gating.SOFTMAX_THEN_TOP_K, true, Activation.SWIGLU,
                "ffn_norm", 0, AttentionKind.GROUPED_QUERY, files);
    }

    /** The same architecture under another name, with other files (Qwen3-MoE is Qwen3 with experts). */
    public Architecture renamed(String newName, FileLayout newFiles) {
        return new Architecture(newName, ropeStyle, qkNorm, gating, normalizeTopK, activation, ffnNormTensor, slidingWindowPeriod, attention, newFiles);
    }

    public Architecture withAttention(AttentionKind kind) {
        return new Architecture(name, ropeStyle, qkNorm, gating, normalizeTopK, activation, ffnNormTensor, slidingWindowPeriod, kind, files);
    }

    public Architecture withRope(Rope.Style style) {
        return new Architecture(name, style, qkNorm, gating, normalizeTopK, activation, ffnNormTensor, slidingWindowPeriod, attention, files);
    }

    public Architecture withQkNorm(QkNorm norm) {
        return new Architecture(name, ropeStyle, norm, gating, normalizeTopK, activation, ffnNormTensor, slidingWindowPeriod, attention, files);
    }

    public Architecture withGating(Gating g, boolean normalize) {
        return new Architecture(name, ropeStyle, qkNorm, g, normalize, activation, ffnNormTensor, slidingWindowPeriod, attention, files);
    }

    public Architecture withActivation(Activation a) {
        return new Architecture(name, ropeStyle, qkNorm, gating, normalizeTopK, a, ffnNormTensor, slidingWindowPeriod, attention, files);
    }

    public Architecture withFfnNormTensor(String tensor) {
        return new Architecture(name, ropeStyle, qkNorm, gating, normalizeTopK, activation, tensor, slidingWindowPeriod, attention, files);
    }

    public Architecture withSlidingWindowPeriod(int period) {
        return new Architecture(name, ropeStyle, qkNorm, gating, normalizeTopK, activation, ffnNormTensor, period, attention, files);
    }

    public boolean usesSlidingWindow(int layer) {
        return slidingWindowPeriod > 0 && layer % slidingWindowPeriod < slidingWindowPeriod - 1;
    }
}
