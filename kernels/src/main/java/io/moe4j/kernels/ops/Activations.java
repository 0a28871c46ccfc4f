package io.moe4j.kernels.ops;

/** Gated activations of feed-forward blocks: out[i] = act(gate[i]) * up[i] in place of gate. */
public final class Activations {
    private Activations() {
    }

    /** SwiGLU: silu(gate) * up. */
    public static void swiglu(float[] gate, int gOff, float[] up, int uOff, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[gOff + i];
            gate[gOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    /**
     * gpt-oss's clamped SwiGLU: gate clamped above at {@code limit}, up clamped to [-limit, limit], then
     * gate * sigmoid(alpha * gate) * (up + 1).
     */
    public static void swigluClamped(float[] gate, int gOff, float[] up, int uOff, int n, float alpha, float limit) {
        for (int i = 0; i < n; i++) {
            float g = Math.min(gate[gOff + i], limit);
            float u = Math.max(-limit, Math.min(up[uOff + i], limit));
            gate[gOff + i] = g / (1f + (float) Math.exp(-alpha * g)) * (u + 1f);
        }
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
