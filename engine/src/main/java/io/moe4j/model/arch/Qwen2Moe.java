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
 * Qwen2-MoE (Qwen1.5-MoE): NeoX RoPE, q/k/v biases, routed experts without renormalisation plus a shared expert
 * scaled by sigmoid(ffn_gate_inp_shexp · x). Biases and the shared expert are found by their tensors.
 */
public final class Qwen2Moe {
    public static final Architecture SPEC = Architecture.llamaLike("qwen2moe", new FileLayout(Experts.ALWAYS, SharedExpert.GATED,
                    Bias.ALWAYS, Set.of(Trait.EXPERT_FF_KEY),
                    new FileLayout.Hf(List.of(new HfClass("Qwen2MoeForCausalLM", "qwen2_moe", Variant.ANY, Qwen3.PRE_TOKENIZER,
                            Map.of("decoder_sparse_step", 1, "mlp_only_layers", List.of(), "use_sliding_window", false))),
                            HfExperts.PER_EXPERT, "num_experts", "moe_intermediate_size", "norm_topk_prob", List.of("num_experts_per_tok"))))
            .withRope(Rope.Style.NEOX)
            .withGating(Architecture.Gating.SOFTMAX_THEN_TOP_K, false);

    private Qwen2Moe() {
    }
}
