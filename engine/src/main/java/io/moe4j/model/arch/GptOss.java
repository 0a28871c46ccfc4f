package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.FileLayout.Bias;
import io.moe4j.model.FileLayout.Experts;
import io.moe4j.model.FileLayout.HfClass;
import io.moe4j.model.FileLayout.HfExperts;
import io.moe4j.model.FileLayout.SharedExpert;
import io.moe4j.model.FileLayout.Trait;
import io.moe4j.model.FileLayout.Variant;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * gpt-oss: NeoX RoPE (YaRN from metadata), biases everywhere, one attention-sink logit per head, a sliding window
 * on even layers, top-k of the biased router logits then softmax over those k, clamped SwiGLU experts. The FFN
 * input norm is stored as post_attention_norm.
 */
public final class GptOss {
    public static final Architecture SPEC = Architecture.llamaLike("gpt-oss", new FileLayout(Experts.ALWAYS, SharedExpert.NONE,
                    Bias.ALWAYS, Set.of(Trait.GPT_OSS_BIASES, Trait.EXPERT_FF_KEY, Trait.HEAD_SIZE_KEYS, Trait.YARN_BETAS),
                    new FileLayout.Hf(List.of(new HfClass("GptOssForCausalLM", "gpt_oss", Variant.ANY, "gpt-4o",
                            Map.of("attention_bias", true, "swiglu_limit", 7.0))),
                            HfExperts.FUSED, "num_local_experts", "intermediate_size", null,
                            List.of("num_experts_per_tok", "experts_per_token"))))
            .withRope(Rope.Style.NEOX)
            .withGating(Architecture.Gating.TOP_K_THEN_SOFTMAX, false)
            .withActivation(Architecture.Activation.SWIGLU_CLAMPED)
            .withFfnNormTensor("post_attention_norm")
            .withSlidingWindowPeriod(2);

    private GptOss() {
    }
}
