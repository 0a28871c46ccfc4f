package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.FileLayout.Bias;
import io.moe4j.model.FileLayout.Experts;
import io.moe4j.model.FileLayout.HfClass;
import io.moe4j.model.FileLayout.HfExperts;
import io.moe4j.model.FileLayout.SharedExpert;
import io.moe4j.model.FileLayout.Variant;

import java.util.List;
import java.util.Map;
import java.util.Set;

/** Qwen2 / Qwen2.5 dense: Llama blocks with NeoX RoPE and q/k/v biases (found by their tensors). */
public final class Qwen2 {
    public static final Architecture SPEC = Architecture.llamaLike("qwen2", new FileLayout(Experts.NEVER, SharedExpert.NONE,
            Bias.ALWAYS, Set.of(),
            new FileLayout.Hf(List.of(new HfClass("Qwen2ForCausalLM", "qwen2", Variant.ANY, Qwen3.PRE_TOKENIZER, Map.of("use_sliding_window", false))),
                    HfExperts.PER_EXPERT, "num_experts", null, null, List.of("num_experts_per_tok"))))
            .withRope(Rope.Style.NEOX);

    private Qwen2() {
    }
}
