package io.moe4j.model.arch;

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
 * DeepSeek-V2/V3 (llama.cpp's {@code deepseek2}): multi-head latent attention (low-rank q and kv projections, one
 * cached latent row per position, RoPE on a separate part of each head, NORM pairs), the first
 * {@code leading_dense_block_count} blocks dense, the others routed experts plus ungated shared experts. The gating
 * function comes from {@code expert_gating_func} (V3: sigmoid, with the {@code exp_probs_b} selection bias and expert
 * groups); files without it are V2, whose gating is softmax. Top-k weights are renormalised only when
 * {@code expert_weights_norm} says so.
 */
public final class DeepSeek2 {
    public static final Architecture SPEC = Architecture.llamaLike("deepseek2", new FileLayout(Experts.ALWAYS, SharedExpert.COUNTED,
                    Bias.NEVER, Set.of(Trait.EXPERT_FF_KEY, Trait.VOCAB_SIZE_KEYS, Trait.YARN_BETAS),
                    new FileLayout.Hf(List.of(
                            new HfClass("DeepseekV2ForCausalLM", "deepseek_v2", Variant.SOFTMAX, "deepseek-llm", Map.of("attention_bias", false)),
                            new HfClass("DeepseekV3ForCausalLM", "deepseek_v3", Variant.SIGMOID, "deepseek-v3", Map.of("attention_bias", false))),
                            HfExperts.PER_EXPERT, "n_routed_experts", "moe_intermediate_size", "norm_topk_prob",
                            List.of("num_experts_per_tok"))))
            .withAttention(Architecture.AttentionKind.LATENT)
            .withGating(Architecture.Gating.SOFTMAX_THEN_TOP_K, false);

    private DeepSeek2() {
    }
}
