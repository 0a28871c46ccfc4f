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

/** Qwen3 dense and Qwen3-MoE: NeoX RoPE and a per-head RMSNorm of queries and keys. */
public final class Qwen3 {
    /** llama.cpp's pre-tokenizer of the Qwen2 and Qwen3 byte-level BPE vocabulary (Qwen1.5-MoE's too). */
    static final String PRE_TOKENIZER = "qwen2";

    public static final Architecture DENSE = Architecture.llamaLike("qwen3", new FileLayout(Experts.NEVER, SharedExpert.NONE,
                    Bias.FROM_CONFIG, Set.of(Trait.HEAD_SIZE_KEYS),
                    new FileLayout.Hf(List.of(new HfClass("Qwen3ForCausalLM", "qwen3", Variant.ANY, PRE_TOKENIZER, Map.of("attention_bias", false))),
                            HfExperts.PER_EXPERT, "num_experts", null, null, List.of("num_experts_per_tok"))))
            .withRope(Rope.Style.NEOX)
            .withQkNorm(Architecture.QkNorm.PER_HEAD);

    /** llama.cpp always renormalises the top-k weights of qwen3moe (norm_topk_prob is not in the GGUF). */
    public static final Architecture MOE = DENSE.renamed("qwen3moe", new FileLayout(Experts.ALWAYS, SharedExpert.NONE,
                    Bias.FROM_CONFIG, Set.of(Trait.EXPERT_FF_KEY, Trait.HEAD_SIZE_KEYS),
                    new FileLayout.Hf(List.of(new HfClass("Qwen3MoeForCausalLM", "qwen3_moe", Variant.ANY, PRE_TOKENIZER,
                            Map.of("attention_bias", false, "decoder_sparse_step", 1, "mlp_only_layers", List.of()))),
                            HfExperts.PER_EXPERT, "num_experts", "moe_intermediate_size", "norm_topk_prob", List.of("num_experts_per_tok"))))
            .withGating(DENSE.gating(), true);

    private Qwen3() {
    }
}
