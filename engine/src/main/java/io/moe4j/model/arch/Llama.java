package io.moe4j.model.arch;

import io.moe4j.model.Architecture;

/** Llama, dense or with experts (Mixtral): NORM RoPE, softmax router, top-k weights renormalised. */
public final class Llama {
    public static final Architecture SPEC = Architecture.llamaLike("llama");

    private Llama() {
    }
}
