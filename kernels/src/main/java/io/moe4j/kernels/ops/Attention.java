package io.moe4j.kernels.ops;

import io.moe4j.kernels.Parallel;
import jdk.incubator.vector.FloatVector;

/**
 * Causal grouped-query attention over the KV cache, flash-attention style: each query token's keys are visited in
 * blocks of {@link #BLOCK} positions with an online softmax (a running maximum and sum, the output rescaled when the
 * maximum grows), so no score array as long as the context is needed. The query heads that share a KV head are
 * processed together, each K and V row read from memory once for all of them. A sliding window starts the visit at
 * the window's first position (nothing before it is read); an attention sink (gpt-oss) is a per-head logit in the
 * softmax that has no value.
 *
 * <p>Blocks start at the token's first visible position and every operation on a (token, head) pair runs in a fixed
 * order, so a token's result depends only on its query and its cache, never on the batch or the thread split.
 */
public final class Attention {
    /** Positions per block of the online softmax. */
    public static final int BLOCK = 32;

    private Attention() {
    }

    /**
     * Attention of {@code n} tokens: token t's query heads ({@code nHead * headDim} floats at {@code q[t * qStride]})
     * attend to positions {@code first[t] .. last[t]} of {@code keys[t]} / {@code values[t]}; the result goes to
     * {@code out[t * qStride ..]}. {@code sinks} (per query head) may be null. Runs on the worker pool.
     */
    public static void attend(int n, float[] q, int qStride, int nHead, int nKvHead, int headDim, KvBuffer[] keys,
                              KvBuffer[] values, int[] first, int[] last, float scale, float[] sinks, float[] out) {
        int tasks = n * nKvHead;
        Parallel.dynamic(tasks, Math.max(1, Math.min(16, tasks / (8 * Parallel.threads()))), (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int t = i / nKvHead, kvh = i % nKvHead;
                attendGroup(q, t * qStride, nHead, nKvHead, headDim, kvh, keys[t], values[t], first[t], last[t], scale,
                        sinks, out, t * qStride, s);
            }
        });
    }

    /** Single token, all heads: the one-token form of {@link #attend} (same arithmetic). */
    public static void attend(float[] q, int qOff, int nHead, int nKvHead, int headDim, KvBuffer keys, KvBuffer values,
                              int first, int last, float scale, float[] sinks, float[] out, int outOff) {
        Scratch s = SCRATCH.get();
        for (int kvh = 0; kvh < nKvHead; kvh++) {
            attendGroup(q, qOff, nHead, nKvHead, headDim, kvh, keys, values, first, last, scale, sinks, out, outOff, s);
        }
    }

    private static final class Scratch {
        float[] q = new float[0], acc = new float[0], scores = new float[0], m = new float[0], l = new float[0];

        void ensure(int group, int headDim) {
            if (q.length < group * headDim) {
                q = new float[group * headDim];
                acc = new float[group * headDim];
            }
            if (m.length < group) {
                m = new float[group];
                l = new float[group];
                scores = new float[group * BLOCK];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** The query heads of KV head {@code kvh} of one token. */
    private static void attendGroup(float[] q, int qOff, int nHead, int nKvHead, int hd, int kvh, KvBuffer keys,
                                    KvBuffer values, int first, int last, float scale, float[] sinks, float[] out,
                                    int outOff, Scratch s) {
        int group = nHead / nKvHead, h0 = kvh * group, col = kvh * hd;
        s.ensure(group, hd);
        float[] qs = s.q, acc = s.acc, sc = s.scores, m = s.m, l = s.l;
        for (int i = 0; i < group * hd; i++) {
            qs[i] = q[qOff + h0 * hd + i] * scale;
            acc[i] = 0f;
        }
        for (int g = 0; g < group; g++) {
            // A sink is a logit with no value: it starts the running maximum and contributes exp(0) = 1 to the sum.
            m[g] = sinks != null ? sinks[h0 + g] : Float.NEGATIVE_INFINITY;
            l[g] = sinks != null ? 1f : 0f;
        }
        boolean simd = hd % 8 == 0;
        for (int b0 = first; b0 <= last; b0 += BLOCK) {
            int len = Math.min(BLOCK, last + 1 - b0);
            for (int g = 0; g < group; g++) {
                int so = g * BLOCK, qo = g * hd;
                if (simd) {
                    for (int j = 0; j < len; j += 4) keys.scores(b0 + j, Math.min(4, len - j), col, qs, qo, hd, sc, so + j);
                } else {
                    for (int j = 0; j < len; j++) sc[so + j] = keys.dot(b0 + j, col, qs, qo, hd);
                }
                float bm = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < len; j++) bm = Math.max(bm, sc[so + j]);
                float mNew = Math.max(m[g], bm);
                if (mNew > m[g]) { // rescale what was accumulated under the old maximum
                    float corr = VectorMath.exp(m[g] - mNew);
                    l[g] *= corr;
                    for (int i = 0; i < hd; i++) acc[qo + i] *= corr;
                    m[g] = mNew;
                }
                int j = 0;
                for (; j + 8 <= len; j += 8) {
                    VectorMath.exp(FloatVector.fromArray(VectorMath.F, sc, so + j).sub(mNew)).intoArray(sc, so + j);
                }
                for (; j < len; j++) sc[so + j] = VectorMath.exp(sc[so + j] - mNew);
                float sum = l[g];
                for (j = 0; j < len; j++) sum += sc[so + j];
                l[g] = sum;
                if (simd) {
                    for (j = 0; j < len; j += 4) values.accumulate(b0 + j, Math.min(4, len - j), col, sc, so + j, acc, qo, hd);
                } else {
                    for (j = 0; j < len; j++) values.addScaled(b0 + j, col, sc[so + j], acc, qo, hd);
                }
            }
        }
        for (int g = 0; g < group; g++) {
            float inv = 1f / l[g];
            int o = outOff + (h0 + g) * hd;
            for (int i = 0; i < hd; i++) out[o + i] = acc[g * hd + i] * inv;
        }
    }
}
