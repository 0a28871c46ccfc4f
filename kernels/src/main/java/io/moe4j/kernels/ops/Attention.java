package io.moe4j.kernels.ops;

/**
 * Causal grouped-query attention of one query position over cached keys and values, with an optional sliding
 * window and optional per-head sink logits (an extra softmax term that absorbs probability mass, gpt-oss).
 */
public final class Attention {
    private Attention() {
    }

    /**
     * @param q        query heads, {@code nHead * headDim} floats at {@code qOff}
     * @param first    first key position visible to this query (0, or the sliding-window start)
     * @param last     last key position visible (the query's own position)
     * @param sinks    per-head sink logits, or null
     * @param out      receives {@code nHead * headDim} floats at {@code outOff}
     * @param scores   scratch of at least {@code last - first + 1} floats
     */
    public static void attend(float[] q, int qOff, int nHead, int nKvHead, int headDim, KvBuffer keys, KvBuffer values,
                              int first, int last, float scale, float[] sinks, float[] out, int outOff, float[] scores) {
        int group = nHead / nKvHead;
        int n = last - first + 1;
        for (int h = 0; h < nHead; h++) {
            int col = (h / group) * headDim;
            int qh = qOff + h * headDim;
            float max = sinks != null ? sinks[h] : Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                float s = keys.dot(first + j, col, q, qh, headDim) * scale;
                scores[j] = s;
                if (s > max) max = s;
            }
            float sum = sinks != null ? (float) Math.exp(sinks[h] - max) : 0f;
            for (int j = 0; j < n; j++) {
                float e = (float) Math.exp(scores[j] - max);
                scores[j] = e;
                sum += e;
            }
            float inv = 1f / sum;
            int oh = outOff + h * headDim;
            java.util.Arrays.fill(out, oh, oh + headDim, 0f);
            for (int j = 0; j < n; j++) values.addScaled(first + j, col, scores[j] * inv, out, oh, headDim);
        }
    }
}
