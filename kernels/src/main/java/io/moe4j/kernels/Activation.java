package io.moe4j.kernels;

/** The gated activations of feed-forward blocks: {@code out[i] = act(gate[i]) * up[i]}. */
public enum Activation {
    /** silu(gate) * up */
    SWIGLU,
    /** gpt-oss: gate clamped above at 7, up to [-7, 7], then gate * sigmoid(1.702 * gate) * (up + 1) */
    SWIGLU_CLAMPED
}
