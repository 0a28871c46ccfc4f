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

/** Llama, dense or with experts (Mixtral): NORM RoPE, softmax router, top-k weights renormalised. */
public final class Llama {
    public static final Architecture SPEC = Architecture.llamaLike("llama", new FileLayout(Experts.OPTIONAL, SharedExpert.NONE,
            Bias.NEVER, Set.of(Trait.VOCAB_SIZE_KEYS, Trait.PERMUTED_QK),
            new FileLayout.Hf(List.of(
                    new HfClass("LlamaForCausalLM", "llama", Variant.DENSE, "llama-bpe", Map.of("attention_bias", false, "mlp_bias", false)),
                    new HfClass("MixtralForCausalLM", "mixtral", Variant.MOE, "llama-bpe",
                            Map.of("attention_bias", false, "mlp_bias", false, "router_aux_loss_coef", 0.02)),
                    new HfClass("MistralForCausalLM", "mistral", Variant.IMPORT_ONLY, "llama-bpe", Map.of())),
                    HfExperts.MIXTRAL, "num_local_experts", null, null, List.of("num_experts_per_tok"))));

    private Llama() {
    }
}
