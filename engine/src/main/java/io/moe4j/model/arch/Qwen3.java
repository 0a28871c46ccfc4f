package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;

/** Qwen3 dense and Qwen3-MoE: NeoX RoPE and a per-head RMSNorm of queries and keys. */
public final class Qwen3 {
    public static final Architecture DENSE = Architecture.llamaLike("qwen3")
            .withRope(Rope.Style.NEOX)
            .withQkNorm(Architecture.QkNorm.PER_HEAD);

    /** llama.cpp always renormalises the top-k weights of qwen3moe (norm_topk_prob is not in the GGUF). */
    public static final Architecture MOE = new Architecture("qwen3moe", DENSE.ropeStyle(), DENSE.qkNorm(), DENSE.gating(),
            true, DENSE.activation(), DENSE.ffnNormTensor(), 0,
            DENSE.attention());

    private Qwen3() {
    }
}
