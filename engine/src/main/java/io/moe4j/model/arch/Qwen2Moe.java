package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;

/**
 * Qwen2-MoE (Qwen1.5-MoE): NeoX RoPE, q/k/v biases, routed experts without renormalisation plus a shared expert
 * scaled by sigmoid(ffn_gate_inp_shexp · x). Biases and the shared expert are found by their tensors.
 */
public final class Qwen2Moe {
    public static final Architecture SPEC = Architecture.llamaLike("qwen2moe")
            .withRope(Rope.Style.NEOX)
            .withGating(Architecture.Gating.SOFTMAX_THEN_TOP_K, false);

    private Qwen2Moe() {
    }
}
