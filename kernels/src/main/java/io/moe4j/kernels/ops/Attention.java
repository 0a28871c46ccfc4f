package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.cpu.Parallel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal grouped-query attention over the KV cache, flash-attention style: keys are visited in blocks of
 * {@link #BLOCK} positions with an online softmax (a running maximum and sum, the output rescaled when the maximum
 * grows), so no score array as long as the context is needed. Each block of K and V rows of one KV head is read
 * (and, for an F16 cache, converted) once per task and then used by the task's query heads of the group (all of
 * them, unless there are fewer tasks than threads and the group is split into head parts) and by up to
 * {@link #TOKENS} query tokens of the same sequence (prefill). Latent attention (DeepSeek) reads its values from the
 * key rows: a value is the first {@code vd} values of its key row of {@code hd}. A sliding window starts the visit
 * at the window's first position (nothing before it is read); an attention sink (gpt-oss) is a per-head logit in
 * the softmax that has no value.
 *
 * <p><b>Spans (flash-decoding).</b> A token's visible range {@code [first, last]} is cut into spans of {@link #SPAN}
 * positions starting at {@code first}. Each span's blocks run the online softmax from a fresh state (maximum -inf,
 * sum 0, output 0), and the spans' partial states are then merged into a running state, in ascending span order,
 * that starts at the sink (maximum = the sink's logit, sum 1, output 0) or empty: with the partial (m, l, o),
 * {@code M' = max(M, m)}, {@code L' = L·exp(M - M') + l·exp(m - M')}, {@code O' = O·exp(M - M') + o·exp(m - M')}
 * (the first factor 0 while the running state is empty); the result is O/L. The spans are what lets one decode
 * token, whose few KV heads alone would keep only a few cores busy, spread its context over all of them: when a
 * call has few (token group, KV head) tasks for the threads, a task is one span of one group, KV head and head part
 * (the query heads of a KV head are split into parts only while the span tasks alone are fewer than the threads,
 * which is latent attention's case: one KV head for all query heads), the partial states go to scratch (at most
 * {@link #MAX_PARTIAL_FLOATS} floats, held by the calling thread), and the merge follows once all are done. When
 * there are many tasks (prefill), or nothing to split (every range within one span), a (group, KV head, head part)
 * task walks its spans itself and merges each as it finishes, so no partial state is kept beyond the span in
 * progress; there the heads are split into parts when there are fewer (group, KV head) tasks than threads, so
 * latent attention over a short context still uses several threads. A span of 512 positions is 16 blocks: its
 * merge (one pass over each row's outputs) is small next to its work, and a context of 32,768 positions still
 * gives 64 tasks per KV head.
 *
 * <p><b>Determinism.</b> Both schedules run the same floating-point operations in the same order: span boundaries
 * depend only on the token's own {@code first} (never on the batch, the thread count or the task layout), blocks
 * start at the span's start, each span starts fresh, each (token, head) row is computed on its own (which rows
 * share a task, and so which head part a row is in, changes no operation on it), and the merge is one method
 * applied in span order. A token's result therefore depends only on its query and its cache: it is bit-identical
 * alone and in any batch, with any thread count, whichever schedule a call picks. (Merging in the order the spans
 * finish would make the result depend on the threads' timing, which is why the decode schedule keeps the partial
 * states and merges them after.)
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
        if (n <= 0) return;
        // Groups of consecutive tokens that read the same blocks: same cache, same first position.
        int[] groupStart = new int[n + 1];
        int groups = 0;
        for (int t = 0; t < n; t++) {
            int g0 = groups == 0 ? -1 : groupStart[groups - 1];
            if (groups == 0 || t - g0 >= TOKENS || keys[t] != keys[g0] || first[t] != first[g0]) groupStart[groups++] = t;
        }
        groupStart[groups] = n;
        int nGroups = groups, perKv = nHead / nKvHead, units = nGroups * nKvHead, threads = Parallel.threads();
        if (threads > 1 && units < FEW_TASKS_PER_THREAD * threads
                && attendSpans(nGroups, groupStart, q, qStride, nHead, nKvHead, headDim, valueDim, keys, values, first, last,
                scale, sinks, out)) {
            return;
        }
        // The query heads of a KV head are split into parts when there are fewer (token group, KV head) tasks than
        // threads: latent attention has one KV head for all query heads (128 in DeepSeek-V3). Each (token, head) row
        // is computed on its own in a fixed order, so the split does not change any result.
        int headsPerPart = headsPerPart(perKv, (threads + units - 1) / units), nParts = (perKv + headsPerPart - 1) / headsPerPart;
        int tasks = units * nParts;
        Parallel.dynamic(tasks, Math.max(1, Math.min(8, tasks / (8 * threads))), (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int part = i % nParts, u = i / nParts, g = u / nKvHead, kvh = u % nKvHead, t0 = groupStart[g];
                int g0 = part * headsPerPart, gn = Math.min(headsPerPart, perKv - g0);
                attendGroup(t0, groupStart[g + 1], q, qStride, nHead, nKvHead, headDim, valueDim, kvh, g0, gn, (KvBuffer) keys[t0],
                        values == null ? null : (KvBuffer) values[t0], first[t0], last, scale, sinks, out, s);
            }
        });
    }

    /** Query heads per part when the {@code perKv} heads of a KV head are to be split into (at most) {@code parts} parts. */
    private static int headsPerPart(int perKv, int parts) {
        int p = Math.max(1, Math.min(perKv, parts));
        return (perKv + p - 1) / p;
    }

    /** Single token, all heads: the one-token form of {@link #attend} (same arithmetic), on the calling thread. */
    public static void attend(float[] q, int qOff, int nHead, int nKvHead, int headDim, KvBuffer keys, KvBuffer values,
                              int first, int last, float scale, float[] sinks, float[] out, int outOff) {
        Scratch s = SCRATCH.get();
        int[] lastOf = {last};
        float[] qt = java.util.Arrays.copyOfRange(q, qOff, qOff + nHead * headDim);
        float[] o = new float[nHead * headDim];
        for (int kvh = 0; kvh < nKvHead; kvh++) {
            attendGroup(0, 1, qt, 0, nHead, nKvHead, headDim, headDim, kvh, 0, nHead / nKvHead, keys, values, first, lastOf,
                    scale, sinks, o, s);
        }
        System.arraycopy(o, 0, out, outOff, o.length);
    }

    /** Spans of a range that starts at {@code first} and ends at {@code last} (0 when it is empty). */
    static int spans(int first, int last) {
        return last < first ? 0 : (last - first) / SPAN + 1;
    }

    /**
     * The span-parallel schedule: one task per (group, KV head, head part, span), each leaving its span's partial
     * state (per query row: maximum, sum, {@code vd} outputs) in scratch held by the calling thread; then, on the
     * calling thread, per (group, KV head, head part), the partial states merged in span order. The heads of a KV
     * head are split into parts only while the span tasks alone are fewer than the threads. Returns false (and does
     * nothing) when the ranges are no longer than a span, so there is nothing to split, or when the partial states
     * would take more than {@link #MAX_PARTIAL_FLOATS}.
     */
    private static boolean attendSpans(int nGroups, int[] groupStart, float[] q, int qStride, int nHead, int nKvHead, int hd,
                                       int vd, KvStore[] keys, KvStore[] values, int[] first, int[] last, float scale,
                                       float[] sinks, float[] out) {
        int perKv = nHead / nKvHead;
        // Per group: its spans, and where its (KV head, span) partial states start; a state is rows * (vd + 2) floats.
        int[] spanCount = new int[nGroups];
        long[] partialStart = new long[nGroups + 1];
        int spanTasks = 0;
        for (int g = 0; g < nGroups; g++) {
            int t0 = groupStart[g], t1 = groupStart[g + 1], maxLast = first[t0] - 1;
            for (int t = t0; t < t1; t++) maxLast = Math.max(maxLast, last[t]);
            spanCount[g] = spans(first[t0], maxLast);
            spanTasks += nKvHead * spanCount[g];
            partialStart[g + 1] = partialStart[g] + (long) nKvHead * spanCount[g] * (t1 - t0) * perKv * (vd + 2);
        }
        if (spanTasks <= nGroups * nKvHead || partialStart[nGroups] > MAX_PARTIAL_FLOATS) return false;
        int threads = Parallel.threads();
        int headsPerPart = headsPerPart(perKv, (threads + spanTasks - 1) / spanTasks), nParts = (perKv + headsPerPart - 1) / headsPerPart;
        // Task i of group g (taskStart[g] <= i < taskStart[g + 1]): (KV head, part) = (i - taskStart[g]) / spanCount[g], span the rest.
        int[] taskStart = new int[nGroups + 1];
        for (int g = 0; g < nGroups; g++) taskStart[g + 1] = taskStart[g] + nKvHead * nParts * spanCount[g];
        float[] partials = PARTIALS.get();
        if (partials.length < partialStart[nGroups]) PARTIALS.set(partials = new float[(int) partialStart[nGroups]]);
        float[] p = partials;
        Parallel.dynamic(taskStart[nGroups], 1, (worker, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int i = from; i < to; i++) {
                int g = groupOf(taskStart, i), j = i - taskStart[g], u = j / spanCount[g], span = j % spanCount[g];
                int kvh = u / nParts, g0 = (u % nParts) * headsPerPart, gn = Math.min(headsPerPart, perKv - g0);
                int t0 = groupStart[g], t1 = groupStart[g + 1], rows = (t1 - t0) * gn;
                KvBuffer k = (KvBuffer) keys[t0], v = values == null ? null : (KvBuffer) values[t0];
                prepare(t0, t1, q, qStride, nHead, nKvHead, hd, vd, kvh, g0, gn, k, v, scale, s);
                spanState(t0, t1, gn, hd, vd, kvh, k, v, first[t0] + span * SPAN, last, s);
                // The state of (g, kvh, part, span): rows maxima, rows sums, rows * vd outputs.
                int o = partialOffset(partialStart[g], spanCount[g], t1 - t0, perKv, vd, kvh, g0, gn, span);
                System.arraycopy(s.m, 0, p, o, rows);
                System.arraycopy(s.l, 0, p, o + rows, rows);
                System.arraycopy(s.acc, 0, p, o + 2 * rows, rows * vd);
            }
        });
        Scratch s = SCRATCH.get();
        for (int g = 0; g < nGroups; g++) {
            int t0 = groupStart[g], t1 = groupStart[g + 1];
            for (int kvh = 0; kvh < nKvHead; kvh++) {
                for (int g0 = 0; g0 < perKv; g0 += headsPerPart) {
                    int gn = Math.min(headsPerPart, perKv - g0), rows = (t1 - t0) * gn;
                    s.ensure(rows, hd, vd);
                    start(t0, t1, nHead, nKvHead, vd, kvh, g0, gn, sinks, s);
                    for (int span = 0; span < spanCount[g]; span++) {
                        int o = partialOffset(partialStart[g], spanCount[g], t1 - t0, perKv, vd, kvh, g0, gn, span);
                        merge(t0, t1, gn, vd, first[t0] + span * SPAN, last, p, o, p, o + rows, p, o + 2 * rows, s);
                    }
                    finish(t0, t1, nHead, nKvHead, vd, kvh, g0, gn, out, s);
                }
            }
        }
        return true;
    }

    /**
     * Where the partial state of (KV head kvh, heads g0 .. g0+gn-1, span) of a group of {@code tokens} tokens and
     * {@code spans} spans starts: the group's states from {@code groupStart}, per KV head and head part its spans in
     * order, each {@code tokens * gn * (vd + 2)} floats; the parts of a KV head before this one hold g0 heads.
     */
    private static int partialOffset(long groupStart, int spans, int tokens, int perKv, int vd, int kvh, int g0, int gn, int span) {
        return (int) (groupStart + ((long) (kvh * perKv + g0) * spans + (long) span * gn) * tokens * (vd + 2));
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
        /** Q8_0 caches: the block scales of the block's key and value rows ({@link KvBuffer.Q8_0#toCodes}). */
        float[] kScales = new float[0], vScales = new float[0];
        /** Q8_0 caches: one block's value weights, softmax weight × scale per (position, 32 values). */
        float[] valueWeights = new float[0];
        /** The running (merged) state of each row: maximum, sum, outputs. */
        float[] runM = new float[0], runL = new float[0], runO = new float[0];

        void ensure(int rows, int headDim, int valueDim) {
            if (q.length < rows * headDim) q = new float[rows * headDim];
            if (acc.length < rows * valueDim) {
                acc = new float[rows * valueDim];
                runO = new float[rows * valueDim];
            }
            if (m.length < rows) {
                m = new float[rows];
                l = new float[rows];
                runM = new float[rows];
                runL = new float[rows];
                scores = new float[rows * BLOCK];
            }
            if (k.length < BLOCK * headDim) k = new float[BLOCK * headDim];
            if (v.length < BLOCK * valueDim) v = new float[BLOCK * valueDim];
            if (kScales.length < BLOCK * (headDim / KvBuffer.Q8_0.QK)) kScales = new float[BLOCK * (headDim / KvBuffer.Q8_0.QK)];
            if (vScales.length < BLOCK * (valueDim / KvBuffer.Q8_0.QK)) {
                vScales = new float[BLOCK * (valueDim / KvBuffer.Q8_0.QK)];
                valueWeights = new float[BLOCK * (valueDim / KvBuffer.Q8_0.QK)];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /** The partial states of the span-parallel schedule, owned by the thread that makes the call. */
    private static final ThreadLocal<float[]> PARTIALS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Query heads g0 .. g0+gn-1 of KV head {@code kvh} for tokens t0 .. t1-1, which share {@code keys},
     * {@code values} and {@code first}, span by span; {@code values} null: the values are the first {@code vd}
     * values of each key row.
     */
    private static void attendGroup(int t0, int t1, float[] q, int qStride, int nHead, int nKvHead, int hd, int vd, int kvh,
                                    int g0, int gn, KvBuffer keys, KvBuffer values, int first, int[] last, float scale,
                                    float[] sinks, float[] out, Scratch s) {
        prepare(t0, t1, q, qStride, nHead, nKvHead, hd, vd, kvh, g0, gn, keys, values, scale, s);
        start(t0, t1, nHead, nKvHead, vd, kvh, g0, gn, sinks, s);
        int maxLast = first - 1;
        for (int t = t0; t < t1; t++) maxLast = Math.max(maxLast, last[t]);
        for (int span = 0, n = spans(first, maxLast); span < n; span++) {
            int s0 = first + span * SPAN;
            spanState(t0, t1, gn, hd, vd, kvh, keys, values, s0, last, s);
            merge(t0, t1, gn, vd, s0, last, s.m, 0, s.l, 0, s.acc, 0, s);
        }
        finish(t0, t1, nHead, nKvHead, vd, kvh, g0, gn, out, s);
    }

    /**
     * Checks the cache's head sizes and puts the scaled queries of the rows of heads g0 .. g0+gn-1 of KV head kvh
     * into {@code s.q}: row r = (token t0 + r / gn, head kvh * group + g0 + r % gn).
     */
    private static void prepare(int t0, int t1, float[] q, int qStride, int nHead, int nKvHead, int hd, int vd, int kvh,
                                int g0, int gn, KvBuffer keys, KvBuffer values, float scale, Scratch s) {
        boolean inKeys = values == null;
        if (keys.headDim() != hd || !inKeys && values.headDim() != vd) {
            throw new IllegalArgumentException("cache heads of " + keys.headDim() + " and " + (inKeys ? keys : values).headDim()
                    + ", not " + hd + " and " + vd);
        }
        if (keys instanceof KvBuffer.Q8_0 && vd % KvBuffer.Q8_0.QK != 0) {
            throw new IllegalArgumentException("Q8_0 values of " + vd + " are not whole blocks of " + KvBuffer.Q8_0.QK);
        }
        int h0 = kvh * (nHead / nKvHead) + g0;
        s.ensure((t1 - t0) * gn, hd, vd);
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g;
                for (int i = 0; i < hd; i++) s.q[r * hd + i] = q[t * qStride + (h0 + g) * hd + i] * scale;
            }
        }
    }

    /** The running state of every row (heads g0 .. g0+gn-1 of KV head kvh) before the first span: the sink's, or empty. */
    private static void start(int t0, int t1, int nHead, int nKvHead, int vd, int kvh, int g0, int gn, float[] sinks, Scratch s) {
        int h0 = kvh * (nHead / nKvHead) + g0;
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g;
                // A sink is a logit with no value: it starts the maximum and contributes exp(0) = 1 to the sum.
                s.runM[r] = sinks != null ? sinks[h0 + g] : Float.NEGATIVE_INFINITY;
                s.runL[r] = sinks != null ? 1f : 0f;
                java.util.Arrays.fill(s.runO, r * vd, r * vd + vd, 0f);
            }
        }
    }

    /**
     * The online softmax of every row over the span that starts at {@code s0} (to the span's end or the row's token's
     * last position), from a fresh state, into {@code s.m}, {@code s.l}, {@code s.acc} ({@code vd} per row); rows
     * whose token ends before s0 stay at the fresh state. The scaled queries are in {@code s.q}; {@code values} null:
     * the values are the first {@code vd} values of each key row.
     */
    private static void spanState(int t0, int t1, int gn, int hd, int vd, int kvh, KvBuffer keys, KvBuffer values, int s0,
                                  int[] last, Scratch s) {
        int rows = (t1 - t0) * gn;
        boolean inKeys = values == null;
        KvBuffer vals = inKeys ? keys : values;
        float[] qs = s.q, acc = s.acc, sc = s.scores, m = s.m, l = s.l, kb = s.k, vb = inKeys ? s.k : s.v;
        int vStride = inKeys ? hd : vd; // floats between the value rows of consecutive positions in vb
        java.util.Arrays.fill(m, 0, rows, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(l, 0, rows, 0f);
        java.util.Arrays.fill(acc, 0, rows * vd, 0f);
        int spanLast = s0 - 1;
        for (int t = t0; t < t1; t++) spanLast = Math.max(spanLast, Math.min(last[t], s0 + SPAN - 1));
        boolean simdK = hd % 8 == 0, simdV = vd % 8 == 0;
        // A block of keys and values is copied (F16 converted; Q8_0 as codes and scales) once for all its readers:
        // the query heads of the group and the tokens.
        boolean q8 = keys instanceof KvBuffer.Q8_0;
        float[] kd = s.kScales, vds = inKeys ? s.kScales : s.vScales;
        int vScaleStride = vStride / KvBuffer.Q8_0.QK;
        for (int b0 = s0; b0 <= spanLast; b0 += BLOCK) {
            int blockLen = Math.min(BLOCK, spanLast + 1 - b0);
            if (q8) {
                ((KvBuffer.Q8_0) keys).toCodes(kvh, b0, blockLen, kb, kd);
                if (!inKeys) ((KvBuffer.Q8_0) vals).toCodes(kvh, b0, blockLen, vb, vds);
            } else {
                keys.toFloats(kvh, b0, blockLen, kb, 0);
                if (!inKeys) values.toFloats(kvh, b0, blockLen, vb, 0);
            }
            for (int t = t0; t < t1; t++) {
                int len = Math.min(blockLen, last[t] + 1 - b0);
                if (len <= 0) continue;
                for (int g = 0; g < gn; g++) {
                    int r = (t - t0) * gn + g;
                    if (q8) blockQ8(r, len, hd, vd, qs, acc, sc, m, l, kb, kd, vb, vds, vStride, vScaleStride, s.valueWeights);
                    else block(r, len, hd, vd, simdK, simdV, qs, acc, sc, m, l, kb, vb, vStride);
                }
            }
        }
    }

    /**
     * Merges the partial state of the span that starts at {@code s0} into the running state of every row whose token
     * sees that span. Row r's partial maximum is {@code pm[pmo + r]}, its sum {@code pl[plo + r]}, its outputs
     * {@code po[poo + r * vd ..]}. The same method serves both schedules, so the merge's arithmetic is one.
     */
    private static void merge(int t0, int t1, int gn, int vd, int s0, int[] last, float[] pm, int pmo, float[] pl, int plo,
                              float[] po, int poo, Scratch s) {
        float[] runM = s.runM, runL = s.runL, runO = s.runO;
        for (int t = t0; t < t1; t++) {
            if (last[t] < s0) continue; // the span is past this token's range
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g, ro = r * vd, o = poo + r * vd;
                float mOld = runM[r], m = pm[pmo + r], mNew = Math.max(mOld, m);
                float a = mOld == Float.NEGATIVE_INFINITY ? 0f : VectorMath.exp(mOld - mNew);
                float b = VectorMath.exp(m - mNew);
                runM[r] = mNew;
                runL[r] = runL[r] * a + pl[plo + r] * b;
                for (int i = 0; i < vd; i++) runO[ro + i] = runO[ro + i] * a + po[o + i] * b;
            }
        }
    }

    /**
     * Writes O / L of every row (heads g0 .. g0+gn-1 of KV head kvh) to the output: rows of {@code nHead * vd}
     * floats, the heads alone, whatever the query stride.
     */
    private static void finish(int t0, int t1, int nHead, int nKvHead, int vd, int kvh, int g0, int gn, float[] out, Scratch s) {
        int h0 = kvh * (nHead / nKvHead) + g0;
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < gn; g++) {
                int r = (t - t0) * gn + g;
                float inv = 1f / s.runL[r];
                int o = t * nHead * vd + (h0 + g) * vd;
                for (int i = 0; i < vd; i++) out[o + i] = s.runO[r * vd + i] * inv;
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
        int j = 0;
        if (simdK) {
            for (; j + 8 <= len; j += 8) scores8(kb, j * hd, hd, hd, qs, qo, sc, so + j);
            for (; j < len; j++) sc[so + j] = score(kb, j * hd, hd, qs, qo);
        } else {
            for (; j < len; j++) sc[so + j] = dotScalar(kb, j * hd, qs, qo, hd);
        }
        softmax(r, len, vd, acc, sc, m, l);
        if (simdV) {
            accumulate(vb, 0, vStride, len, vd, sc, so, 1, 0, acc, ao);
        } else {
            for (int p = 0; p < len; p++) for (int i = 0; i < vd; i++) acc[ao + i] += sc[so + p] * vb[p * vStride + i];
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
     * {@link #block} over Q8_0 keys and values as {@link KvBuffer.Q8_0#toCodes} copies them: a score is the sum over
     * the 32-value blocks of a key row of d × (q · the block's codes); a value row ({@code vd} values: all of a value
     * store's row, or the first blocks of a key row) adds (weight × d) × its codes to the accumulator, block by block.
     * Position j's key codes are at {@code kc[j * hd]}, its scales at {@code kd[j * hd / 32]}; its value codes at
     * {@code vc[j * vStride]}, scales at {@code vs[j * vScaleStride]}; {@code qw} is scratch for the value weights.
     */
    private static void blockQ8(int r, int len, int hd, int vd, float[] qs, float[] acc, float[] sc, float[] m, float[] l,
                                float[] kc, float[] kd, float[] vc, float[] vs, int vStride, int vScaleStride, float[] qw) {
        int so = r * BLOCK, qo = r * hd, ao = r * vd, nb = hd / KvBuffer.Q8_0.QK;
        int j = 0;
        for (; j + 4 <= len; j += 4) scoresQ8x4(kc, kd, j, hd, nb, qs, qo, sc, so + j);
        for (; j < len; j++) sc[so + j] = dotQ8(kc, j * hd, kd, j * nb, hd, qs, qo);
        softmax(r, len, vd, acc, sc, m, l);
        // A value block's weight is (softmax weight × its scale): one product per (position, block), then the float
        // accumulation over the codes with that weight per 32 values.
        int nbV = vd / KvBuffer.Q8_0.QK;
        for (int p = 0; p < len; p++) {
            for (int b = 0; b < nbV; b++) qw[p * nbV + b] = sc[so + p] * vs[p * vScaleStride + b];
        }
        accumulate(vc, 0, vStride, len, vd, qw, 0, nbV, 1, acc, ao);
    }

    /** Dot of q[qo .. qo+n) with the codes at {@code c[co ..]} and block scales at {@code d[dOff ..]}: per block, d × (q · codes). */
    private static float dotQ8(float[] c, int co, float[] d, int dOff, int n, float[] q, int qo) {
        FloatVector total = FloatVector.zero(F);
        for (int i = 0; i < n; i += 32, dOff++) {
            FloatVector a = FloatVector.fromArray(F, c, co + i).mul(FloatVector.fromArray(F, q, qo + i));
            a = FloatVector.fromArray(F, c, co + i + 8).fma(FloatVector.fromArray(F, q, qo + i + 8), a);
            a = FloatVector.fromArray(F, c, co + i + 16).fma(FloatVector.fromArray(F, q, qo + i + 16), a);
            a = FloatVector.fromArray(F, c, co + i + 24).fma(FloatVector.fromArray(F, q, qo + i + 24), a);
            total = a.fma(FloatVector.broadcast(F, d[dOff]), total);
        }
        return sum8(total);
    }

    /** {@link #dotQ8} of positions j .. j+3 of a block (codes {@code j * n}, scales {@code j * nb}) as four independent chains. */
    private static void scoresQ8x4(float[] c, float[] d, int j, int n, int nb, float[] q, int qo, float[] sc, int so) {
        int c0 = j * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n, d0 = j * nb;
        FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
        for (int i = 0, b = d0; i < n; i += 32, b++) {
            FloatVector q0 = FloatVector.fromArray(F, q, qo + i), q1 = FloatVector.fromArray(F, q, qo + i + 8);
            FloatVector q2 = FloatVector.fromArray(F, q, qo + i + 16), q3 = FloatVector.fromArray(F, q, qo + i + 24);
            FloatVector a = FloatVector.fromArray(F, c, c0 + i).mul(q0);
            a = FloatVector.fromArray(F, c, c0 + i + 8).fma(q1, a);
            a = FloatVector.fromArray(F, c, c0 + i + 16).fma(q2, a);
            a = FloatVector.fromArray(F, c, c0 + i + 24).fma(q3, a);
            t0 = a.fma(FloatVector.broadcast(F, d[b]), t0);
            a = FloatVector.fromArray(F, c, c1 + i).mul(q0);
            a = FloatVector.fromArray(F, c, c1 + i + 8).fma(q1, a);
            a = FloatVector.fromArray(F, c, c1 + i + 16).fma(q2, a);
            a = FloatVector.fromArray(F, c, c1 + i + 24).fma(q3, a);
            t1 = a.fma(FloatVector.broadcast(F, d[b + nb]), t1);
            a = FloatVector.fromArray(F, c, c2 + i).mul(q0);
            a = FloatVector.fromArray(F, c, c2 + i + 8).fma(q1, a);
            a = FloatVector.fromArray(F, c, c2 + i + 16).fma(q2, a);
            a = FloatVector.fromArray(F, c, c2 + i + 24).fma(q3, a);
            t2 = a.fma(FloatVector.broadcast(F, d[b + 2 * nb]), t2);
            a = FloatVector.fromArray(F, c, c3 + i).mul(q0);
            a = FloatVector.fromArray(F, c, c3 + i + 8).fma(q1, a);
            a = FloatVector.fromArray(F, c, c3 + i + 16).fma(q2, a);
            a = FloatVector.fromArray(F, c, c3 + i + 24).fma(q3, a);
            t3 = a.fma(FloatVector.broadcast(F, d[b + 3 * nb]), t3);
        }
        sc[so] = sum8(t0);
        sc[so + 1] = sum8(t1);
        sc[so + 2] = sum8(t2);
        sc[so + 3] = sum8(t3);
    }

    private static float dotScalar(float[] k, int ko, float[] q, int qo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += k[ko + i] * q[qo + i];
        return s;
    }

    private static float sum8(FloatVector v) {
        return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3))) + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
    }

    /** {@link #score} of 8 positions, {@code stride} floats apart, as 8 independent FMA chains (the same arithmetic per position). */
    private static void scores8(float[] k, int b0, int stride, int n, float[] q, int qo, float[] sc, int so) {
        int b1 = b0 + stride, b2 = b1 + stride, b3 = b2 + stride, b4 = b3 + stride, b5 = b4 + stride, b6 = b5 + stride, b7 = b6 + stride;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int i = 0; i < n; i += 8) {
            FloatVector qv = FloatVector.fromArray(F, q, qo + i);
            a0 = FloatVector.fromArray(F, k, b0 + i).fma(qv, a0);
            a1 = FloatVector.fromArray(F, k, b1 + i).fma(qv, a1);
            a2 = FloatVector.fromArray(F, k, b2 + i).fma(qv, a2);
            a3 = FloatVector.fromArray(F, k, b3 + i).fma(qv, a3);
            a4 = FloatVector.fromArray(F, k, b4 + i).fma(qv, a4);
            a5 = FloatVector.fromArray(F, k, b5 + i).fma(qv, a5);
            a6 = FloatVector.fromArray(F, k, b6 + i).fma(qv, a6);
            a7 = FloatVector.fromArray(F, k, b7 + i).fma(qv, a7);
        }
        sc[so] = sum8(a0);
        sc[so + 1] = sum8(a1);
        sc[so + 2] = sum8(a2);
        sc[so + 3] = sum8(a3);
        sc[so + 4] = sum8(a4);
        sc[so + 5] = sum8(a5);
        sc[so + 6] = sum8(a6);
        sc[so + 7] = sum8(a7);
    }

    /**
     * dot(q[qo .. qo+n), k[ko ..]): 8 lanes accumulated in order and summed ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); the
     * arithmetic of every score, whether one position or {@link #scores8}'s eight at a time.
     */
    private static float score(float[] k, int ko, int n, float[] q, int qo) {
        FloatVector a = FloatVector.zero(F);
        for (int i = 0; i < n; i += 8) a = FloatVector.fromArray(F, k, ko + i).fma(FloatVector.fromArray(F, q, qo + i), a);
        return sum8(a);
    }

    /**
     * acc[ao + i] += w[wo + j * wStride + (i / 32) * wBlockStep] * v[b0 + j * stride + i] for positions j = 0 .. count-1
     * in order, i in [0, n): one weight per position ({@code wBlockStep} 0), or one per position and 32 values (Q8_0's
     * blocks, {@code wBlockStep} 1). Each element's sum runs over the positions in order; 64 elements at a time (8
     * independent FMA chains, enough to hide the FMA latency) are held in registers for the whole block.
     */
    private static void accumulate(float[] v, int b0, int stride, int count, int n, float[] w, int wo, int wStride,
                                   int wBlockStep, float[] acc, int ao) {
        int i = 0;
        for (; i + 64 <= n; i += 64) {
            FloatVector a0 = FloatVector.fromArray(F, acc, ao + i), a1 = FloatVector.fromArray(F, acc, ao + i + 8);
            FloatVector a2 = FloatVector.fromArray(F, acc, ao + i + 16), a3 = FloatVector.fromArray(F, acc, ao + i + 24);
            FloatVector a4 = FloatVector.fromArray(F, acc, ao + i + 32), a5 = FloatVector.fromArray(F, acc, ao + i + 40);
            FloatVector a6 = FloatVector.fromArray(F, acc, ao + i + 48), a7 = FloatVector.fromArray(F, acc, ao + i + 56);
            for (int j = 0, b = b0 + i, k = wo + (i >> 5) * wBlockStep; j < count; j++, b += stride, k += wStride) {
                FloatVector wj = FloatVector.broadcast(F, w[k]), wk = FloatVector.broadcast(F, w[k + wBlockStep]);
                a0 = FloatVector.fromArray(F, v, b).fma(wj, a0);
                a1 = FloatVector.fromArray(F, v, b + 8).fma(wj, a1);
                a2 = FloatVector.fromArray(F, v, b + 16).fma(wj, a2);
                a3 = FloatVector.fromArray(F, v, b + 24).fma(wj, a3);
                a4 = FloatVector.fromArray(F, v, b + 32).fma(wk, a4);
                a5 = FloatVector.fromArray(F, v, b + 40).fma(wk, a5);
                a6 = FloatVector.fromArray(F, v, b + 48).fma(wk, a6);
                a7 = FloatVector.fromArray(F, v, b + 56).fma(wk, a7);
            }
            a0.intoArray(acc, ao + i);
            a1.intoArray(acc, ao + i + 8);
            a2.intoArray(acc, ao + i + 16);
            a3.intoArray(acc, ao + i + 24);
            a4.intoArray(acc, ao + i + 32);
            a5.intoArray(acc, ao + i + 40);
            a6.intoArray(acc, ao + i + 48);
            a7.intoArray(acc, ao + i + 56);
        }
        for (; i + 32 <= n; i += 32) {
            FloatVector a0 = FloatVector.fromArray(F, acc, ao + i), a1 = FloatVector.fromArray(F, acc, ao + i + 8);
            FloatVector a2 = FloatVector.fromArray(F, acc, ao + i + 16), a3 = FloatVector.fromArray(F, acc, ao + i + 24);
            for (int j = 0, b = b0 + i, k = wo + (i >> 5) * wBlockStep; j < count; j++, b += stride, k += wStride) {
                FloatVector wj = FloatVector.broadcast(F, w[k]);
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
            for (int j = 0, b = b0 + i, k = wo + (i >> 5) * wBlockStep; j < count; j++, b += stride, k += wStride) {
                a = FloatVector.fromArray(F, v, b).fma(FloatVector.broadcast(F, w[k]), a);
            }
            a.intoArray(acc, ao + i);
        }
    }
}
