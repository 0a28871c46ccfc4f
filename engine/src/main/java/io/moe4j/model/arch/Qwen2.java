package io.moe4j.model.arch;

import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;

/** Qwen2 / Qwen2.5 dense: Llama blocks with NeoX RoPE and q/k/v biases (found by their tensors). */
public final class Qwen2 {
    public static final Architecture SPEC = Architecture.llamaLike("qwen2").withRope(Rope.Style.NEOX);

    private Qwen2() {
    }
}
