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

/** OLMoE: NeoX RoPE, RMSNorm over the whole q and k projections, top-k weights not renormalised. */
public final class Olmoe {
    public static final Architecture SPEC = Architecture.llamaLike("olmoe", new FileLayout(Experts.ALWAYS, SharedExpert.NONE,
                    Bias.FROM_CONFIG, Set.of(),
                    new FileLayout.Hf(List.of(new HfClass("OlmoeForCausalLM", "olmoe", Variant.ANY, "olmo", Map.of())),
                            HfExperts.PER_EXPERT, "num_experts", null, "norm_topk_prob", List.of("num_experts_per_tok"))))
            .withRope(Rope.Style.NEOX)
            .withQkNorm(Architecture.QkNorm.WHOLE)
            .withGating(Architecture.Gating.SOFTMAX_THEN_TOP_K, false);

    private Olmoe() {
    }
}
