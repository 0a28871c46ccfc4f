package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.cpu.Parallel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal grouped-query attention over the KV cache, flash-attention style: keys are visited in blocks of
 * {@link #BLOCK} positions with an online softmax (a running maximum and sum, the output rescaled when the maximum
 * grows), so no score array as long as the context is needed. Each block of K and V rows of one KV head is read
 * (and, for an F16 cache, converted) once per task and then used by the task's query heads of the group (all of
 * them, unless there are fewer tasks than threads and the group is split) and by up to {@link #TOKENS} query tokens
 * of the same sequence (prefill). Latent attention (DeepSeek) reads its values from the key rows. A sliding window starts the visit at the window's
 * first position (nothing before it is read); an attention sink (gpt-oss) is a per-head logit in the softmax that
 * has no value.
 *
 * <p>Blocks start at the token's first visible position and every operation on a (token, head) pair runs in a fixed
 * order, whichever tokens share its blocks, so a token's result depends only on its query and its cache, never on
 * the batch or the thread split.
 */
public final class Attention {
    /** Positions per block of the online softmax. */
    public static final int BLOCK = 32;
    /** Query tokens of one sequence that share each block of K and V rows. */
    static final int TOKENS = 8;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    private Attention() {
    }

    /**
     * Attention of {@code n} tokens: token t's query heads ({@code nHead * headDim} floats at {@code q[t * qStride]})
     * attend to positions {@code first[t] .. last[t]} of {@code keys[t]} / {@code values[t]}; the result goes to
     * {@code out[t * nHead * headDim ..]}. {@code sinks} (per query head) may be null. Runs on the worker pool.
     */
    public static void attend(int n, float[] q, int qStride, int nHead, int nKvHead, int headDim, KvStore[] keys,
                              KvStore[] values, int[] first, int[] last, float scale, float[] sinks, float[] out) {
        attend(n, q, qStride, nHead, nKvHead, headDim, headDim, keys, values, first, last, scale, sinks, out);
    }

    /**
     * Attention whose values are the first {@code valueDim} values of each key row (DeepSeek's latent attention:
     * the cached row is [c | rope(k_pe)], the value c), over stores of one head of {@code keyDim}: token t's
     * {@code nHead} query heads of {@code keyDim} ({@code q[t * qStride ..]}) attend to positions
     * {@code first[t] .. last[t]} of {@code keys[t]}; output rows of {@code nHead * valueDim} floats. The rows are
     * read once for scores and values alike.
     */
    public static void attendLatent(int n, float[] q, int qStride, int nHead, int keyDim, int valueDim, KvStore[] keys,
                                    int[] first, int[] last, float scale, float[] out) {
        if (valueDim > keyDim) throw new IllegalArgumentException("values of " + valueDim + " in key rows of " + keyDim);
        attend(n, q, qStride, nHead, 1, keyDim, valueDim, keys, null, first, last, scale, null, out);
    }

    /** Both forms: {@code values} null means each value is the first {@code valueDim} values of its key row. */
    private static void attend(int n, float[] q, int qStride, int nHead, int nKvHead, int headDim, int valueDim,
                               KvStore[] keys, KvStore[] values, int[] first, int[] last, float scale, float[] sinks, float[] out) {
        // Groups of consecutive tokens that read the same blocks: same cache, same first position.
        int[] groupStart = new int[n + 1];
        int groups = 0;
        for (int t = 0; t < n; t++) {
            int g0 = groups == 0 ? -1 : groupStart[groups - 1];
            if (groups == 0 || t - g0 >= TOKENS || keys[t] != keys[g0] || first[t] != first[g0]) groupStart[groups++] = t;
        }
        groupStart[groups] = n;
        // The query heads of a KV head are split into parts when there are fewer (token group, KV head) tasks than
        // threads: latent attention has one KV head for all query heads (128 in DeepSeek-V3). Each (token, head) row
        // is computed on its own in a fixed order, so the split does not change any result.
        int nGroups = groups, perKv = nHead / nKvHead, units = nGroups * nKvHead;
        int parts = Math.max(1, Math.min(perKv, (Parallel.threads() + units - 1) / units));
        int headsPerPart = (perKv + parts - 1) / parts, nParts = (perKv + headsPerPart - 1) / headsPerPart;
        int tasks = units * nParts;
        Parallel.dynamic(tasks, Math.max(1, Math.min(8, tasks / (8 * Parallel.threads()))), (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int part = i % nParts, u = i / nParts, g = u / nKvHead, kvh = u % nKvHead, t0 = groupStart[g];
                int g0 = part * headsPerPart, gn = Math.min(headsPerPart, perKv - g0);
                attendGroup(t0, groupStart[g + 1], q, qStride, nHead, nKvHead, headDim, valueDim, kvh, g0, gn, (KvBuffer) keys[t0],
                        values == null ? null : (KvBuffer) values[t0], first[t0], last, scale, sinks, out, s);
            }
        });
    }

    /** Single token, all heads: the one-token form of {@link #attend} (same arithmetic). */
    public static void attend(float[] q, int qOff, int nHead, int nKvHead, int headDim, KvBuffer keys, KvBuffer values,
                              int first, int last, float scale, float[] sinks, float[] out, int outOff) {
        Scratch s = SCRATCH.get();
        int[] lastOf = {last};
        float[] qt = java.util.Arrays.copyOfRange(q, qOff, qOff + nHead * headDim);
        float[] o = new float[nHead * headDim];
        for (int kvh = 0; kvh < nKvHead; kvh++) {
            attendGroup(0, 1, qt, 0, nHead, nKvHead, headDim, headDim, kvh, 0, nHead / nKvHead, keys, values, first, lastOf, scale, sinks, o, s);
        }
        System.arraycopy(o, 0, out, outOff, o.length);
    }

    private static final class Scratch {
        float[] q = new float[0], acc = new float[0], scores = new float[0], m = new float[0], l = new float[0];
        float[] k = new float[0], v = new float[0];

        void ensure(int rows, int headDim, int valueDim) {
            if (q.length < rows * headDim) q = new float[rows * headDim];
            if (acc.length < rows * valueDim) acc = new float[rows * valueDim];
            if (m.length < rows) {
                m = new float[rows];
                l = new float[rows];
                scores = new float[rows * BLOCK];
            }
            if (k.length < BLOCK * headDim) k = new float[BLOCK * headDim];
            if (v.length < BLOCK * valueDim) v = new float[BLOCK * valueDim];
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * KV head {@code kvh} for tokens t0 .. t1-1, which share {@code keys}, {@code values} and {@code first};
     * {@code values} null: the values are the first {@code vd} values of each key row.
     */
    private static void attendGroup(int t0, int t1, float[] q, int qStride, int nHead, int nKvHead, int hd, int vd, int kvh,
                                    int g0, int gn, KvBuffer keys, KvBuffer values, int first, int[] last, float scale, float[] sinks,
                                    float[] out, Scratch s) {
        int h0 = kvh * (nHead / nKvHead) + g0, rows = (t1 - t0) * gn;
        boolean inKeys = values == null;
        if (keys.headDim() != hd || !inKeys && values.headDim() != vd) {
            throw new IllegalArgumentException("cache heads of " + keys.headDim() + " and " + (inKeys ? keys : values).headDim()
                    + ", not " + hd + " and " + vd);
        }
        KvBuffer vals = inKeys ? keys : values;
        s.ensure(rows, hd, vd);
        float[] qs = s.q, acc = s.acc, sc = s.scores, m = s.m, l = s.l, kb = s.k, vb = inKeys ? s.k : s.v;
        int vStride = inKeys ? hd : vd; // floats between the value rows of consecutive positions in vb
        int maxLast = first - 1;
        // Row r = (token t0 + r / gn, head h0 + r % gn): its scaled query, accumulator and softmax state.
        for (int t = t0; t < t1; t++) {
            maxLast = Math.max(maxLast, last[t]);
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g;
                for (int i = 0; i < hd; i++) qs[r * hd + i] = q[t * qStride + (h0 + g) * hd + i] * scale;
                for (int i = 0; i < vd; i++) acc[r * vd + i] = 0f;
                // A sink is a logit with no value: it starts the running maximum and contributes exp(0) = 1 to the sum.
                m[r] = sinks != null ? sinks[h0 + g] : Float.NEGATIVE_INFINITY;
                l[r] = sinks != null ? 1f : 0f;
            }
        }
        boolean simdK = hd % 8 == 0, simdV = vd % 8 == 0;
        // Float keys and values are copied (an F16 cache converted) a block at a time, once for all its readers;
        // Q8_0 blocks are read where they are.
        boolean q8 = keys instanceof KvBuffer.Q8_0;
        if (q8 && vd % KvBuffer.Q8_0.QK != 0) {
            throw new IllegalArgumentException("Q8_0 values of " + vd + " are not whole blocks of " + KvBuffer.Q8_0.QK);
        }
        for (int b0 = first; b0 <= maxLast; b0 += BLOCK) {
            int blockLen = Math.min(BLOCK, maxLast + 1 - b0);
            if (!q8) {
                keys.toFloats(kvh, b0, blockLen, kb, 0);
                if (!inKeys) values.toFloats(kvh, b0, blockLen, vb, 0);
            }
            for (int t = t0; t < t1; t++) {
                int len = Math.min(blockLen, last[t] + 1 - b0);
                if (len <= 0) continue;
                for (int g = 0; g < gn; g++) {
                    int r = (t - t0) * gn + g;
                    if (q8) blockQ8((KvBuffer.Q8_0) keys, (KvBuffer.Q8_0) vals, kvh, b0, r, len, hd, vd, qs, acc, sc, m, l);
                    else block(r, len, hd, vd, simdK, simdV, qs, acc, sc, m, l, kb, vb, vStride);
                }
            }
        }
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g;
                float inv = 1f / l[r];
                int o = t * nHead * vd + (h0 + g) * vd; // output rows are the heads alone, whatever the query stride
                for (int i = 0; i < vd; i++) out[o + i] = acc[r * vd + i] * inv;
            }
        }
    }

    /**
     * One block of {@code len} positions for query row r: scores, online softmax, values. Position j of the block is
     * key row {@code j * hd} of kb and value row {@code j * vStride} of vb ({@code vd} values).
     */
    private static void block(int r, int len, int hd, int vd, boolean simdK, boolean simdV, float[] qs, float[] acc,
                              float[] sc, float[] m, float[] l, float[] kb, float[] vb, int vStride) {
        int so = r * BLOCK, qo = r * hd, ao = r * vd;
        for (int j = 0; j < len; j += 4) {
            int count = Math.min(4, len - j);
            if (simdK) scores(kb, j * hd, hd, count, hd, qs, qo, sc, so + j);
            else for (int c = 0; c < count; c++) sc[so + j + c] = dotScalar(kb, (j + c) * hd, qs, qo, hd);
        }
        softmax(r, len, vd, acc, sc, m, l);
        if (simdV) {
            accumulate(vb, 0, vStride, len, vd, sc, so, acc, ao);
        } else {
            for (int j = 0; j < len; j++) for (int i = 0; i < vd; i++) acc[ao + i] += sc[so + j] * vb[j * vStride + i];
        }
    }

    /**
     * The online softmax over block scores {@code sc[r * BLOCK ..+len]}: rescales what row r accumulated ({@code vd}
     * values) when the
     * maximum grows, turns the scores into weights and adds them to the running sum.
     */
    private static void softmax(int r, int len, int vd, float[] acc, float[] sc, float[] m, float[] l) {
        int so = r * BLOCK, ao = r * vd;
        float bm = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) bm = Math.max(bm, sc[so + j]);
        float mNew = Math.max(m[r], bm);
        if (mNew > m[r]) { // rescale what was accumulated under the old maximum
            float corr = VectorMath.exp(m[r] - mNew);
            l[r] *= corr;
            for (int i = 0; i < vd; i++) acc[ao + i] *= corr;
            m[r] = mNew;
        }
        VectorMath.expShifted(sc, so, len, mNew);
        float sum = l[r];
        for (int j = 0; j < len; j++) sum += sc[so + j];
        l[r] = sum;
    }

    /**
     * {@link #block} over Q8_0 keys and values, read as stored: a score is the sum over the 32-value blocks of a key
     * row of d × (q · the block's int8s); a value row ({@code vd} values: all of a value store's row, or the first
     * blocks of a key row) adds (weight × d) × its int8s to the accumulator, block by block.
     */
    private static void blockQ8(KvBuffer.Q8_0 keys, KvBuffer.Q8_0 values, int kvh, int b0, int r, int len, int hd, int vd,
                                float[] qs, float[] acc, float[] sc, float[] m, float[] l) {
        int so = r * BLOCK, qo = r * hd, ao = r * vd;
        for (int j = 0; j < len; j++) {
            int p = b0 + j;
            sc[so + j] = dotQ8(keys.page(p), keys.offset(kvh, p), hd, qs, qo);
        }
        softmax(r, len, vd, acc, sc, m, l);
        for (int i = 0, blk = 0; i < vd; i += 32, blk++) {
            FloatVector a0 = FloatVector.fromArray(F, acc, ao + i), a1 = FloatVector.fromArray(F, acc, ao + i + 8);
            FloatVector a2 = FloatVector.fromArray(F, acc, ao + i + 16), a3 = FloatVector.fromArray(F, acc, ao + i + 24);
            for (int j = 0; j < len; j++) {
                int p = b0 + j;
                MemorySegment s = values.page(p);
                long o = values.offset(kvh, p) + (long) blk * KvBuffer.Q8_0.BLOCK_BYTES;
                FloatVector wd = FloatVector.broadcast(F, sc[so + j] * Float.float16ToFloat(s.get(LE_SHORT, o)));
                a0 = int8s(s, o + 2).fma(wd, a0);
                a1 = int8s(s, o + 10).fma(wd, a1);
                a2 = int8s(s, o + 18).fma(wd, a2);
                a3 = int8s(s, o + 26).fma(wd, a3);
            }
            a0.intoArray(acc, ao + i);
            a1.intoArray(acc, ao + i + 8);
            a2.intoArray(acc, ao + i + 16);
            a3.intoArray(acc, ao + i + 24);
        }
    }

    /** Dot of q[qo .. qo+n) with the Q8_0 row at byte {@code o} of {@code s}: per block, d × (q · int8s). */
    private static float dotQ8(MemorySegment s, long o, int n, float[] q, int qo) {
        FloatVector total = FloatVector.zero(F);
        for (int i = 0; i < n; i += 32, o += KvBuffer.Q8_0.BLOCK_BYTES) {
            FloatVector a = int8s(s, o + 2).mul(FloatVector.fromArray(F, q, qo + i));
            a = int8s(s, o + 10).fma(FloatVector.fromArray(F, q, qo + i + 8), a);
            a = int8s(s, o + 18).fma(FloatVector.fromArray(F, q, qo + i + 16), a);
            a = int8s(s, o + 26).fma(FloatVector.fromArray(F, q, qo + i + 24), a);
            total = a.fma(FloatVector.broadcast(F, Float.float16ToFloat(s.get(LE_SHORT, o))), total);
        }
        return sum8(total);
    }

    /** 8 int8 at byte {@code o} of {@code s} as floats. */
    private static FloatVector int8s(MemorySegment s, long o) {
        return (FloatVector) ByteVector.fromMemorySegment(B64, s, o, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0);
    }

    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static float dotScalar(float[] k, int ko, float[] q, int qo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += k[ko + i] * q[qo + i];
        return s;
    }

    private static float sum8(FloatVector v) {
        return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3))) + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
    }

    /**
     * scores[so + c] = dot(q[qo ..], k[b0 + c * stride ..]) for c in [0, count): per position, 8 lanes accumulated in order and
     * summed ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); 4 positions at a time as 4 independent FMA chains.
     */
    private static void scores(float[] k, int b0, int stride, int count, int n, float[] q, int qo, float[] sc, int so) {
        if (count == 4) {
            int b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < n; i += 8) {
                FloatVector qv = FloatVector.fromArray(F, q, qo + i);
                a0 = FloatVector.fromArray(F, k, b0 + i).fma(qv, a0);
                a1 = FloatVector.fromArray(F, k, b1 + i).fma(qv, a1);
                a2 = FloatVector.fromArray(F, k, b2 + i).fma(qv, a2);
                a3 = FloatVector.fromArray(F, k, b3 + i).fma(qv, a3);
            }
            sc[so] = sum8(a0);
            sc[so + 1] = sum8(a1);
            sc[so + 2] = sum8(a2);
            sc[so + 3] = sum8(a3);
        } else {
            for (int c = 0; c < count; c++, b0 += stride) {
                FloatVector a = FloatVector.zero(F);
                for (int i = 0; i < n; i += 8) a = FloatVector.fromArray(F, k, b0 + i).fma(FloatVector.fromArray(F, q, qo + i), a);
                sc[so + c] = sum8(a);
            }
        }
    }

    /**
     * acc[ao + i] += w[wo + j] * v[b0 + j * stride + i] for positions j = 0 .. count-1 in order, i in [0, n): each
     * element's sum runs over the positions in order; 32 elements at a time (4 independent FMA chains) are held in
     * registers for the whole block.
     */
    private static void accumulate(float[] v, int b0, int stride, int count, int n, float[] w, int wo, float[] acc, int ao) {
        int i = 0;
        for (; i + 32 <= n; i += 32) {
            FloatVector a0 = FloatVector.fromArray(F, acc, ao + i), a1 = FloatVector.fromArray(F, acc, ao + i + 8);
            FloatVector a2 = FloatVector.fromArray(F, acc, ao + i + 16), a3 = FloatVector.fromArray(F, acc, ao + i + 24);
            for (int j = 0, b = b0 + i; j < count; j++, b += stride) {
                FloatVector wj = FloatVector.broadcast(F, w[wo + j]);
                a0 = FloatVector.fromArray(F, v, b).fma(wj, a0);
                a1 = FloatVector.fromArray(F, v, b + 8).fma(wj, a1);
                a2 = FloatVector.fromArray(F, v, b + 16).fma(wj, a2);
                a3 = FloatVector.fromArray(F, v, b + 24).fma(wj, a3);
            }
            a0.intoArray(acc, ao + i);
            a1.intoArray(acc, ao + i + 8);
            a2.intoArray(acc, ao + i + 16);
            a3.intoArray(acc, ao + i + 24);
        }
        for (; i < n; i += 8) {
            FloatVector a = FloatVector.fromArray(F, acc, ao + i);
            for (int j = 0, b = b0 + i; j < count; j++, b += stride) a = FloatVector.fromArray(F, v, b).fma(FloatVector.broadcast(F, w[wo + j]), a);
            a.intoArray(acc, ao + i);
        }
    }
}
