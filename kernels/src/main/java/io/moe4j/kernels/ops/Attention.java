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
 * (and, for an F16 cache, converted) once and then used by every query head of the group and by up to
 * {@link #TOKENS} query tokens of the same sequence (prefill). A sliding window starts the visit at the window's
 * first position (nothing before it is read); an attention sink (gpt-oss) is a per-head logit in the softmax that
 * has no value.
 *
 * <p><b>Spans (flash-decoding).</b> A token's visible range {@code [first, last]} is cut into spans of {@link #SPAN}
 * positions starting at {@code first}. Each span's blocks run the online softmax from a fresh state (maximum -inf,
 * sum 0, output 0), and the spans' partial states are then merged into a running state, in ascending span order,
 * that starts at the sink (maximum = the sink's logit, sum 1, output 0) or empty: with the partial (m, l, o),
 * {@code M' = max(M, m)}, {@code L' = L·exp(M - M') + l·exp(m - M')}, {@code O' = O·exp(M - M') + o·exp(m - M')}
 * (the first factor 0 while the running state is empty); the result is O/L. The spans are what lets one decode
 * token, whose few KV heads alone would keep only a few cores busy, spread its context over all of them: when a
 * call has few (token group, KV head) tasks for the threads, a task is one span of one group and KV head, the
 * partial states go to scratch (at most {@link #MAX_PARTIAL_FLOATS} floats, held by the calling thread), and the
 * merge follows once all are done. When there are many tasks (prefill), a (group, KV head) task walks its spans
 * itself and merges each as it finishes, so no partial state is kept beyond the span in progress. A span of 512
 * positions is 16 blocks: its merge (one pass over each row's outputs) is small next to its work, and a context
 * of 32,768 positions still gives 64 tasks per KV head.
 *
 * <p><b>Determinism.</b> Both schedules run the same floating-point operations in the same order: span boundaries
 * depend only on the token's own {@code first} (never on the batch, the thread count or the task layout), blocks
 * start at the span's start, each span starts fresh, and the merge is one method applied in span order. A token's
 * result therefore depends only on its query and its cache: it is bit-identical alone and in any batch, with any
 * thread count, whichever schedule a call picks. (Merging in the order the spans finish would make the result
 * depend on the threads' timing, which is why the decode schedule keeps the partial states and merges them after.)
 */
public final class Attention {
    /** Positions per block of the online softmax. */
    public static final int BLOCK = 32;
    /** Positions per span: the unit a token's range is split into, a multiple of {@link #BLOCK}. */
    public static final int SPAN = 512;
    /** Query tokens of one sequence that share each block of K and V rows. */
    static final int TOKENS = 8;
    /**
     * The span-parallel schedule is used while a call has fewer (group, KV head) tasks than this many per thread;
     * with more, the threads are busy without splitting.
     */
    private static final int FEW_TASKS_PER_THREAD = 4;
    /** The most floats of partial states the span-parallel schedule keeps (16 MiB); a call that would need more runs per (group, KV head). */
    private static final long MAX_PARTIAL_FLOATS = 4L << 20;
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
        if (n <= 0) return;
        // Groups of consecutive tokens that read the same blocks: same cache, same first position.
        int[] groupStart = new int[n + 1];
        int groups = 0;
        for (int t = 0; t < n; t++) {
            int g0 = groups == 0 ? -1 : groupStart[groups - 1];
            if (groups == 0 || t - g0 >= TOKENS || keys[t] != keys[g0] || first[t] != first[g0]) groupStart[groups++] = t;
        }
        groupStart[groups] = n;
        int nGroups = groups, tasks = nGroups * nKvHead, threads = Parallel.threads();
        if (threads > 1 && tasks < FEW_TASKS_PER_THREAD * threads
                && attendSpans(nGroups, groupStart, q, qStride, nHead, nKvHead, headDim, keys, values, first, last, scale, sinks, out)) {
            return;
        }
        Parallel.dynamic(tasks, Math.max(1, Math.min(8, tasks / (8 * threads))), (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int g = i / nKvHead, kvh = i % nKvHead;
                attendGroup(groupStart[g], groupStart[g + 1], q, qStride, nHead, nKvHead, headDim, kvh, (KvBuffer) keys[groupStart[g]],
                        (KvBuffer) values[groupStart[g]], first[groupStart[g]], last, scale, sinks, out, s);
            }
        });
    }

    /** Single token, all heads: the one-token form of {@link #attend} (same arithmetic), on the calling thread. */
    public static void attend(float[] q, int qOff, int nHead, int nKvHead, int headDim, KvBuffer keys, KvBuffer values,
                              int first, int last, float scale, float[] sinks, float[] out, int outOff) {
        Scratch s = SCRATCH.get();
        int[] lastOf = {last};
        float[] qt = java.util.Arrays.copyOfRange(q, qOff, qOff + nHead * headDim);
        float[] o = new float[nHead * headDim];
        for (int kvh = 0; kvh < nKvHead; kvh++) {
            attendGroup(0, 1, qt, 0, nHead, nKvHead, headDim, kvh, keys, values, first, lastOf, scale, sinks, o, s);
        }
        System.arraycopy(o, 0, out, outOff, o.length);
    }

    /** Spans of a range that starts at {@code first} and ends at {@code last} (0 when it is empty). */
    static int spans(int first, int last) {
        return last < first ? 0 : (last - first) / SPAN + 1;
    }

    /**
     * The span-parallel schedule: one task per (group, KV head, span), each leaving its span's partial state (per
     * query row: maximum, sum, {@code hd} outputs) in scratch held by the calling thread; then, on the calling
     * thread, per (group, KV head), the partial states merged in span order. Returns false (and does nothing) when the ranges are no longer than a span, so
     * there is nothing to split, or when the partial states would take more than {@link #MAX_PARTIAL_FLOATS}.
     */
    private static boolean attendSpans(int nGroups, int[] groupStart, float[] q, int qStride, int nHead, int nKvHead, int hd,
                                       KvStore[] keys, KvStore[] values, int[] first, int[] last, float scale, float[] sinks,
                                       float[] out) {
        int group = nHead / nKvHead;
        // Per group: its spans, and where its (KV head, span) partial states start; a state is rows * (hd + 2) floats.
        int[] spanCount = new int[nGroups];
        int[] taskStart = new int[nGroups + 1];
        long[] partialStart = new long[nGroups + 1];
        for (int g = 0; g < nGroups; g++) {
            int t0 = groupStart[g], t1 = groupStart[g + 1], maxLast = first[t0] - 1;
            for (int t = t0; t < t1; t++) maxLast = Math.max(maxLast, last[t]);
            spanCount[g] = spans(first[t0], maxLast);
            taskStart[g + 1] = taskStart[g] + nKvHead * spanCount[g];
            partialStart[g + 1] = partialStart[g] + (long) nKvHead * spanCount[g] * (t1 - t0) * group * (hd + 2);
        }
        int spanTasks = taskStart[nGroups];
        if (spanTasks <= nGroups * nKvHead || partialStart[nGroups] > MAX_PARTIAL_FLOATS) return false;
        float[] partials = PARTIALS.get();
        if (partials.length < partialStart[nGroups]) PARTIALS.set(partials = new float[(int) partialStart[nGroups]]);
        float[] p = partials;
        Parallel.dynamic(spanTasks, 1, (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int g = groupOf(taskStart, i), j = i - taskStart[g], kvh = j / spanCount[g], span = j % spanCount[g];
                int t0 = groupStart[g], t1 = groupStart[g + 1], rows = (t1 - t0) * group;
                KvBuffer k = (KvBuffer) keys[t0], v = (KvBuffer) values[t0];
                prepare(t0, t1, q, qStride, nHead, nKvHead, hd, kvh, k, v, scale, s);
                spanState(t0, t1, group, hd, kvh, k, v, first[t0] + span * SPAN, last, s);
                // The state of (g, kvh, span): rows maxima, rows sums, rows * hd outputs.
                int o = (int) (partialStart[g] + (long) (kvh * spanCount[g] + span) * rows * (hd + 2));
                System.arraycopy(s.m, 0, p, o, rows);
                System.arraycopy(s.l, 0, p, o + rows, rows);
                System.arraycopy(s.acc, 0, p, o + 2 * rows, rows * hd);
            }
        });
        Scratch s = SCRATCH.get();
        for (int g = 0; g < nGroups; g++) {
            int t0 = groupStart[g], t1 = groupStart[g + 1], rows = (t1 - t0) * group;
            s.ensure(rows, hd);
            for (int kvh = 0; kvh < nKvHead; kvh++) {
                start(t0, t1, nHead, nKvHead, hd, kvh, sinks, s);
                for (int span = 0; span < spanCount[g]; span++) {
                    int o = (int) (partialStart[g] + (long) (kvh * spanCount[g] + span) * rows * (hd + 2));
                    merge(t0, t1, group, hd, first[t0] + span * SPAN, last, p, o, p, o + rows, p, o + 2 * rows, s);
                }
                finish(t0, t1, nHead, nKvHead, hd, kvh, out, s);
            }
        }
        return true;
    }

    /** The group whose tasks include task i: the last g with taskStart[g] <= i. */
    private static int groupOf(int[] taskStart, int i) {
        int lo = 0, hi = taskStart.length - 2;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (taskStart[mid] <= i) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    private static final class Scratch {
        float[] q = new float[0], acc = new float[0], scores = new float[0], m = new float[0], l = new float[0];
        float[] k = new float[0], v = new float[0];
        /** The running (merged) state of each row: maximum, sum, outputs. */
        float[] runM = new float[0], runL = new float[0], runO = new float[0];

        void ensure(int rows, int headDim) {
            if (q.length < rows * headDim) {
                q = new float[rows * headDim];
                acc = new float[rows * headDim];
                runO = new float[rows * headDim];
            }
            if (m.length < rows) {
                m = new float[rows];
                l = new float[rows];
                runM = new float[rows];
                runL = new float[rows];
                scores = new float[rows * BLOCK];
            }
            if (k.length < BLOCK * headDim) {
                k = new float[BLOCK * headDim];
                v = new float[BLOCK * headDim];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /** The partial states of the span-parallel schedule, owned by the thread that makes the call. */
    private static final ThreadLocal<float[]> PARTIALS = ThreadLocal.withInitial(() -> new float[0]);

    /** KV head {@code kvh} for tokens t0 .. t1-1, which share {@code keys}, {@code values} and {@code first}: span by span. */
    private static void attendGroup(int t0, int t1, float[] q, int qStride, int nHead, int nKvHead, int hd, int kvh,
                                    KvBuffer keys, KvBuffer values, int first, int[] last, float scale, float[] sinks,
                                    float[] out, Scratch s) {
        int group = nHead / nKvHead;
        prepare(t0, t1, q, qStride, nHead, nKvHead, hd, kvh, keys, values, scale, s);
        start(t0, t1, nHead, nKvHead, hd, kvh, sinks, s);
        int maxLast = first - 1;
        for (int t = t0; t < t1; t++) maxLast = Math.max(maxLast, last[t]);
        for (int span = 0, n = spans(first, maxLast); span < n; span++) {
            int s0 = first + span * SPAN;
            spanState(t0, t1, group, hd, kvh, keys, values, s0, last, s);
            merge(t0, t1, group, hd, s0, last, s.m, 0, s.l, 0, s.acc, 0, s);
        }
        finish(t0, t1, nHead, nKvHead, hd, kvh, out, s);
    }

    /** Checks the cache's head size and puts the scaled queries of KV head kvh's rows into {@code s.q}. */
    private static void prepare(int t0, int t1, float[] q, int qStride, int nHead, int nKvHead, int hd, int kvh,
                                KvBuffer keys, KvBuffer values, float scale, Scratch s) {
        if (keys.headDim() != hd || values.headDim() != hd) throw new IllegalArgumentException("cache heads of " + keys.headDim() + ", not " + hd);
        int group = nHead / nKvHead, h0 = kvh * group;
        s.ensure((t1 - t0) * group, hd);
        // Row r = (token t0 + r / group, head h0 + r % group).
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < group; g++) {
                int r = (t - t0) * group + g;
                for (int i = 0; i < hd; i++) s.q[r * hd + i] = q[t * qStride + (h0 + g) * hd + i] * scale;
            }
        }
    }

    /** The running state of every row before the first span: the sink's, or empty. */
    private static void start(int t0, int t1, int nHead, int nKvHead, int hd, int kvh, float[] sinks, Scratch s) {
        int group = nHead / nKvHead, h0 = kvh * group;
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < group; g++) {
                int r = (t - t0) * group + g;
                // A sink is a logit with no value: it starts the maximum and contributes exp(0) = 1 to the sum.
                s.runM[r] = sinks != null ? sinks[h0 + g] : Float.NEGATIVE_INFINITY;
                s.runL[r] = sinks != null ? 1f : 0f;
                java.util.Arrays.fill(s.runO, r * hd, r * hd + hd, 0f);
            }
        }
    }

    /**
     * The online softmax of every row over the span that starts at {@code s0} (to the span's end or the row's token's
     * last position), from a fresh state, into {@code s.m}, {@code s.l}, {@code s.acc}; rows whose token ends before
     * s0 stay at the fresh state. The scaled queries are in {@code s.q}.
     */
    private static void spanState(int t0, int t1, int group, int hd, int kvh, KvBuffer keys, KvBuffer values, int s0,
                                  int[] last, Scratch s) {
        int rows = (t1 - t0) * group;
        float[] qs = s.q, acc = s.acc, sc = s.scores, m = s.m, l = s.l, kb = s.k, vb = s.v;
        java.util.Arrays.fill(m, 0, rows, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(l, 0, rows, 0f);
        java.util.Arrays.fill(acc, 0, rows * hd, 0f);
        int spanLast = s0 - 1;
        for (int t = t0; t < t1; t++) spanLast = Math.max(spanLast, Math.min(last[t], s0 + SPAN - 1));
        boolean simd = hd % 8 == 0;
        // Float keys and values are copied (an F16 cache converted) a block at a time, once for all its readers;
        // Q8_0 blocks are read where they are.
        boolean q8 = keys instanceof KvBuffer.Q8_0;
        for (int b0 = s0; b0 <= spanLast; b0 += BLOCK) {
            int blockLen = Math.min(BLOCK, spanLast + 1 - b0);
            if (!q8) {
                keys.toFloats(kvh, b0, blockLen, kb, 0);
                values.toFloats(kvh, b0, blockLen, vb, 0);
            }
            for (int t = t0; t < t1; t++) {
                int len = Math.min(blockLen, last[t] + 1 - b0);
                if (len <= 0) continue;
                for (int g = 0; g < group; g++) {
                    int r = (t - t0) * group + g;
                    if (q8) blockQ8((KvBuffer.Q8_0) keys, (KvBuffer.Q8_0) values, kvh, b0, r, len, hd, qs, acc, sc, m, l);
                    else block(r, len, hd, simd, qs, acc, sc, m, l, kb, vb, 0, hd);
                }
            }
        }
    }

    /**
     * Merges the partial state of the span that starts at {@code s0} into the running state of every row whose token
     * sees that span. Row r's partial maximum is {@code pm[pmo + r]}, its sum {@code pl[plo + r]}, its outputs
     * {@code po[poo + r * hd ..]}. The same method serves both schedules, so the merge's arithmetic is one.
     */
    private static void merge(int t0, int t1, int group, int hd, int s0, int[] last, float[] pm, int pmo, float[] pl, int plo,
                              float[] po, int poo, Scratch s) {
        float[] runM = s.runM, runL = s.runL, runO = s.runO;
        for (int t = t0; t < t1; t++) {
            if (last[t] < s0) continue; // the span is past this token's range
            for (int g = 0; g < group; g++) {
                int r = (t - t0) * group + g, ro = r * hd, o = poo + r * hd;
                float mOld = runM[r], m = pm[pmo + r], mNew = Math.max(mOld, m);
                float a = mOld == Float.NEGATIVE_INFINITY ? 0f : VectorMath.exp(mOld - mNew);
                float b = VectorMath.exp(m - mNew);
                runM[r] = mNew;
                runL[r] = runL[r] * a + pl[plo + r] * b;
                for (int i = 0; i < hd; i++) runO[ro + i] = runO[ro + i] * a + po[o + i] * b;
            }
        }
    }

    /** Writes O / L of every row of KV head kvh to the output (rows are the heads alone, whatever the query stride). */
    private static void finish(int t0, int t1, int nHead, int nKvHead, int hd, int kvh, float[] out, Scratch s) {
        int group = nHead / nKvHead, h0 = kvh * group;
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < group; g++) {
                int r = (t - t0) * group + g;
                float inv = 1f / s.runL[r];
                int o = t * nHead * hd + (h0 + g) * hd;
                for (int i = 0; i < hd; i++) out[o + i] = s.runO[r * hd + i] * inv;
            }
        }
    }
    /**
     * One block of {@code len} positions for query row r: scores, online softmax, values. Position j of the block is
     * row {@code base + j * stride} of kb / vb.
     */
    private static void block(int r, int len, int hd, boolean simd, float[] qs, float[] acc, float[] sc, float[] m,
                              float[] l, float[] kb, float[] vb, int base, int stride) {
        int so = r * BLOCK, qo = r * hd;
        for (int j = 0; j < len; j += 4) {
            int count = Math.min(4, len - j);
            if (simd) scores(kb, base + j * stride, stride, count, hd, qs, qo, sc, so + j);
            else for (int c = 0; c < count; c++) sc[so + j + c] = dotScalar(kb, base + (j + c) * stride, qs, qo, hd);
        }
        softmax(r, len, hd, acc, sc, m, l);
        if (simd) {
            accumulate(vb, base, stride, len, hd, sc, so, acc, qo);
        } else {
            for (int j = 0; j < len; j++) for (int i = 0; i < hd; i++) acc[qo + i] += sc[so + j] * vb[base + j * stride + i];
        }
    }

    /**
     * The online softmax over block scores {@code sc[r * BLOCK ..+len]}: rescales what row r accumulated when the
     * maximum grows, turns the scores into weights and adds them to the running sum.
     */
    private static void softmax(int r, int len, int hd, float[] acc, float[] sc, float[] m, float[] l) {
        int so = r * BLOCK, qo = r * hd;
        float bm = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) bm = Math.max(bm, sc[so + j]);
        float mNew = Math.max(m[r], bm);
        if (mNew > m[r]) { // rescale what was accumulated under the old maximum
            float corr = VectorMath.exp(m[r] - mNew);
            l[r] *= corr;
            for (int i = 0; i < hd; i++) acc[qo + i] *= corr;
            m[r] = mNew;
        }
        VectorMath.expShifted(sc, so, len, mNew);
        float sum = l[r];
        for (int j = 0; j < len; j++) sum += sc[so + j];
        l[r] = sum;
    }

    /**
     * {@link #block} over Q8_0 keys and values, read as stored: a score is the sum over the 32-value blocks of a key
     * row of d × (q · the block's int8s); a value row adds (weight × d) × its int8s to the accumulator, block by block.
     */
    private static void blockQ8(KvBuffer.Q8_0 keys, KvBuffer.Q8_0 values, int kvh, int b0, int r, int len, int hd,
                                float[] qs, float[] acc, float[] sc, float[] m, float[] l) {
        int so = r * BLOCK, qo = r * hd;
        for (int j = 0; j < len; j++) {
            int p = b0 + j;
            sc[so + j] = dotQ8(keys.page(p), keys.offset(kvh, p), hd, qs, qo);
        }
        softmax(r, len, hd, acc, sc, m, l);
        for (int i = 0, blk = 0; i < hd; i += 32, blk++) {
            FloatVector a0 = FloatVector.fromArray(F, acc, qo + i), a1 = FloatVector.fromArray(F, acc, qo + i + 8);
            FloatVector a2 = FloatVector.fromArray(F, acc, qo + i + 16), a3 = FloatVector.fromArray(F, acc, qo + i + 24);
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
            a0.intoArray(acc, qo + i);
            a1.intoArray(acc, qo + i + 8);
            a2.intoArray(acc, qo + i + 16);
            a3.intoArray(acc, qo + i + 24);
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
