package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;

/**
 * gpt-oss: NeoX RoPE (YaRN from metadata), biases everywhere, one attention-sink logit per head, a sliding window
 * on even layers, top-k of the biased router logits then softmax over those k, clamped SwiGLU experts. The FFN
 * input norm is stored as post_attention_norm.
 */
public final class GptOss {
    public static final Architecture SPEC = Architecture.llamaLike("gpt-oss")
            .withRope(Rope.Style.NEOX)
            .withGating(Architecture.Gating.TOP_K_THEN_SOFTMAX, false)
            .withActivation(Architecture.Activation.SWIGLU_CLAMPED)
            .withFfnNormTensor("post_attention_norm")
            .withSlidingWindowPeriod(2);

    private GptOss() {
    }
}
