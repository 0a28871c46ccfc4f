package io.moe4j.kernels.ops;

import io.moe4j.kernels.Activation;

/** Gated activations of feed-forward blocks (out[i] = act(gate[i]) * up[i] in place of gate), softmax, sigmoid. */
public final class Activations {
    private Activations() {
    }

    /** gpt-oss's SwiGLU constants (llama.cpp hard-codes them for this architecture too). */
    public static final float SWIGLU_ALPHA = 1.702f, SWIGLU_LIMIT = 7.0f;

    public static void apply(Activation kind, float[] gate, int gOff, float[] up, int uOff, int n) {
        switch (kind) {
            case SWIGLU -> swiglu(gate, gOff, up, uOff, n);
            case SWIGLU_CLAMPED -> swigluClamped(gate, gOff, up, uOff, n, SWIGLU_ALPHA, SWIGLU_LIMIT);
        }
    }

    /** SwiGLU: silu(gate) * up, with the exp of {@link VectorMath} (SIMD body and scalar tail give the same bits). */
    public static void swiglu(float[] gate, int gOff, float[] up, int uOff, int n) {
        VectorMath.gated(gate, gOff, up, uOff, n, false, 1f, 0f);
    }

    /**
     * gpt-oss's clamped SwiGLU: gate clamped above at {@code limit}, up clamped to [-limit, limit], then
     * gate * sigmoid(alpha * gate) * (up + 1).
     */
    public static void swigluClamped(float[] gate, int gOff, float[] up, int uOff, int n, float alpha, float limit) {
        VectorMath.gated(gate, gOff, up, uOff, n, true, alpha, limit);
    }

    /** In-place softmax of {@code n} floats. */
    public static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }

    public static float sigmoid(float x) {
        return 1f / (1f + (float) Math.exp(-x));
    }
}
