package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;

/** OLMoE: NeoX RoPE, RMSNorm over the whole q and k projections, top-k weights not renormalised. */
public final class Olmoe {
    public static final Architecture SPEC = Architecture.llamaLike("olmoe")
            .withRope(Rope.Style.NEOX)
            .withQkNorm(Architecture.QkNorm.WHOLE)
            .withGating(Architecture.Gating.SOFTMAX_THEN_TOP_K, false);

    private Olmoe() {
    }
}
