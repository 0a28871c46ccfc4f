package io.moe4j.kernels.cpu;

import io.moe4j.kernels.Activation;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.ExpertCounts;
import io.moe4j.kernels.FeedForwardWeights;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.ModelSource;
import io.moe4j.kernels.MoeWeights;
import io.moe4j.kernels.Rope;
import io.moe4j.kernels.Routing;
import io.moe4j.kernels.RoutingTrace;
import io.moe4j.kernels.Tensor;
import io.moe4j.kernels.Weight;
import io.moe4j.kernels.WeightLoader;
import io.moe4j.kernels.ops.Activations;
import io.moe4j.kernels.ops.Attention;
import io.moe4j.kernels.ops.CpuKvPool;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.kernels.ops.RmsNorm;

import java.util.Arrays;

import static io.moe4j.kernels.cpu.CpuTensor.of;

/**
 * {@link Backend} on the CPU: the SIMD kernels of this module on the {@link Parallel} worker pool. Tensors are Java
 * arrays ({@link CpuTensor}), weights are {@link CpuMatrix} views (interleaved where the type has a layout for the
 * decode kernels, {@link CpuWeightLoader}), KV pages are off-heap ({@link CpuKvPool}).
 */
public final class CpuBackend implements Backend {
    /** The CPU backend, with the layout cache in the folder configured at each load ({@link LayoutCache#configuredDirectory}). */
    public static final CpuBackend INSTANCE = new CpuBackend();

    /** Work below this many floats runs on the calling thread (a dispatch costs more than it saves). */
    private static final int PARALLEL_MIN = 1 << 15;

    /** Where prepared layouts are kept between loads, or null; read from the configuration at each load when {@code configured}. */
    private final java.nio.file.Path layoutCache;
    private final boolean configured;

    private CpuBackend() {
        this.layoutCache = null;
        this.configured = true;
    }

    /** A CPU backend keeping the interleaved layouts of the models it loads in {@code layoutCache} (null: none). */
    public CpuBackend(java.nio.file.Path layoutCache) {
        this.layoutCache = layoutCache;
        this.configured = false;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Tensor allocate(long floats) {
        return new CpuTensor(new float[Math.toIntExact(floats)]);
    }

    @Override
    public Tensor upload(float[] values) {
        return values == null ? null : new CpuTensor(values.clone());
    }

    @Override
    public void write(Tensor dst, long offset, float[] src, int srcOffset, int n) {
        System.arraycopy(src, srcOffset, of(dst), Math.toIntExact(offset), n);
    }

    @Override
    public void read(Tensor src, long offset, float[] dst, int dstOffset, int n) {
        System.arraycopy(of(src), Math.toIntExact(offset), dst, dstOffset, n);
    }

    @Override
    public WeightLoader loader(ModelSource source) {
        return new CpuWeightLoader(source, configured ? LayoutCache.configuredDirectory() : layoutCache);
    }

    @Override
    public KvPool kvPool(long budgetBytes) {
        return CpuKvPool.of(budgetBytes);
    }

    @Override
    public KvPool defaultKvPool() {
        return CpuKvPool.shared();
    }

    @Override
    public ExpertCounts expertCounts(int layers, int experts) {
        return new CpuExpertCounts(layers, experts);
    }

    private static CpuMatrix matrix(Weight w) {
        if (w instanceof CpuMatrix m) return m;
        throw new IllegalArgumentException("a weight of another backend was passed to the CPU backend");
    }

    @Override
    public void matmul(Product... products) {
        MatMul.Task[] tasks = new MatMul.Task[products.length];
        for (int i = 0; i < products.length; i++) {
            Product p = products[i];
            tasks[i] = new MatMul.Task(matrix(p.w()), of(p.x()), p.xOffset(), p.n(), of(p.out()), p.outOffset());
        }
        MatMul.mulAll(tasks);
    }

    @Override
    public void matmulHeads(Weight w, int heads, Tensor xt, int xOffset, int xStride, int xHeadStride, int n,
                            Tensor outT, int outOffset, int outStride, int outHeadStride) {
        CpuMatrix m = matrix(w);
        if (heads <= 0 || m.rows() % heads != 0) throw new IllegalArgumentException(m.rows() + " rows in " + heads + " heads");
        int rows = m.rows() / heads, cols = m.cols();
        float[] x = of(xt), out = of(outT);
        if (n == 0) return;
        long xLast = xOffset + (long) (n - 1) * xStride + (long) (heads - 1) * xHeadStride + cols;
        long oLast = outOffset + (long) (n - 1) * outStride + (long) (heads - 1) * outHeadStride + rows;
        if (xOffset < 0 || outOffset < 0 || xLast > x.length || oLast > out.length) {
            throw new IllegalArgumentException("tensors of " + x.length + " and " + out.length + " floats cannot hold " + n
                    + " rows of " + heads + " heads of " + cols + " in and " + rows + " out");
        }
        // Each head's slices are gathered into consecutive rows, so that every head is one ordinary product (with
        // the same arithmetic, hence batch invariance), all heads in one dispatch; then scattered.
        HeadBuffers b = HEADS.get().ensure(heads * n * cols, heads * n * rows);
        float[] in = b.in, o = b.out;
        MatMul.Task[] tasks = new MatMul.Task[heads];
        for (int h = 0; h < heads; h++) {
            for (int t = 0; t < n; t++) System.arraycopy(x, xOffset + t * xStride + h * xHeadStride, in, (h * n + t) * cols, cols);
            tasks[h] = new MatMul.Task(m.rows(h * rows, rows), in, h * n * cols, n, o, h * n * rows);
        }
        MatMul.mulAll(tasks);
        for (int h = 0; h < heads; h++) {
            for (int t = 0; t < n; t++) System.arraycopy(o, (h * n + t) * rows, out, outOffset + t * outStride + h * outHeadStride, rows);
        }
    }

    /** Per-thread gather and scatter arrays of {@link #matmulHeads}, grown to the largest call seen. */
    private static final class HeadBuffers {
        float[] in = new float[0], out = new float[0];

        HeadBuffers ensure(int inFloats, int outFloats) {
            if (in.length < inFloats) in = new float[inFloats];
            if (out.length < outFloats) out = new float[outFloats];
            return this;
        }
    }

    private static final ThreadLocal<HeadBuffers> HEADS = ThreadLocal.withInitial(HeadBuffers::new);

    @Override
    public void copyRows(Tensor srcT, int srcOffset, int srcStride, Tensor dstT, int dstOffset, int dstStride, int rows, int width) {
        float[] src = of(srcT), dst = of(dstT);
        for (int r = 0; r < rows; r++) System.arraycopy(src, srcOffset + r * srcStride, dst, dstOffset + r * dstStride, width);
    }

    @Override
    public void embed(Weight table, int[] tokens, int n, Tensor out) {
        CpuMatrix m = matrix(table);
        float[] o = of(out);
        for (int t = 0; t < n; t++) MatMul.row(m, tokens[t], o, t * m.cols());
    }

    @Override
    public void rmsNorm(Tensor xt, int xOffset, int rows, int width, Tensor weight, float eps, Tensor outT, int outOffset) {
        float[] x = of(xt), out = of(outT), w = of(weight);
        rowsParallel(rows, width, (from, to) -> {
            for (int r = from; r < to; r++) RmsNorm.apply(out, outOffset + r * width, x, xOffset + r * width, w, width, eps);
        });
    }

    @Override
    public void ropeAngles(Rope rope, int[] positions, int n, Tensor cos, Tensor sin) {
        float[] c = of(cos), s = of(sin);
        int half = rope.nRot() / 2;
        for (int t = 0; t < n; t++) rope.angles(positions[t], c, s, t * half);
    }

    @Override
    public void rope(Rope rope, Tensor xt, int offset, int rows, int stride, int heads, int headDim, Tensor cos, Tensor sin) {
        float[] x = of(xt), c = of(cos), s = of(sin);
        int half = rope.nRot() / 2;
        rowsParallel(rows, heads * headDim, (from, to) -> {
            for (int r = from; r < to; r++) rope.apply(x, offset + r * stride, heads, headDim, c, s, r * half);
        });
    }

    @Override
    public void add(Tensor xt, int xOffset, Tensor yt, int yOffset, int n) {
        float[] x = of(xt), y = of(yt);
        for (int i = 0; i < n; i++) x[xOffset + i] += y[yOffset + i];
    }

    @Override
    public void addBias(Tensor xt, int rows, int width, Tensor bias) {
        if (bias == null) return;
        float[] x = of(xt), b = of(bias);
        for (int r = 0; r < rows; r++) addInPlace(x, r * width, b, 0, width);
    }

    @Override
    public void appendKv(int n, Tensor k, Tensor v, int width, KvStore[] keys, KvStore[] values, int[] positions) {
        float[] ka = of(k), va = of(v);
        for (int t = 0; t < n; t++) {
            ((KvBuffer) keys[t]).write(positions[t], ka, t * width);
            ((KvBuffer) values[t]).write(positions[t], va, t * width);
        }
    }

    @Override
    public void appendKeys(int n, Tensor k, int width, KvStore[] keys, int[] positions) {
        float[] ka = of(k);
        for (int t = 0; t < n; t++) ((KvBuffer) keys[t]).write(positions[t], ka, t * width);
    }

    @Override
    public void latentAttention(int n, Tensor q, int qStride, int nHead, int keyDim, int valueDim, KvStore[] keys,
                                int[] first, int[] last, float scale, Tensor out) {
        Attention.attendLatent(n, of(q), qStride, nHead, keyDim, valueDim, keys, first, last, scale, of(out));
    }

    @Override
    public boolean shiftKv(Rope rope, KvStore[] keys, KvStore[] values, int keep, int discard, int length) {
        if (keys.length != values.length) throw new IllegalArgumentException(keys.length + " key stores and " + values.length + " value stores");
        if (keep < 0 || discard < 0 || keep + discard > length) {
            throw new IllegalArgumentException("cannot drop " + discard + " positions after " + keep + " of " + length);
        }
        int n = keys.length;
        KvBuffer[] stores = new KvBuffer[2 * n];
        for (int l = 0; l < n; l++) {
            stores[l] = buffer(keys[l]);
            stores[n + l] = buffer(values[l]);
        }
        if (discard == 0) return true;
        // Every page first, so that a pool without room leaves every layer as it was.
        for (int i = 0; i < stores.length; i++) {
            if (!stores[i].reserveShift(keep, discard, length)) {
                for (int j = 0; j < i; j++) stores[j].undoReserveShift();
                return false;
            }
        }
        float[] cos = null, sin = null;
        if (rope != null) {
            cos = new float[rope.nRot() / 2];
            sin = new float[rope.nRot() / 2];
            rope.shiftAngles(-discard, cos, sin, 0);
        }
        float[] c = cos, sn = sin;
        Parallel.dynamic(stores.length, 1, (w, from, to) -> {
            for (int i = from; i < to; i++) stores[i].shift(i < n ? rope : null, c, sn, keep, discard, length);
        });
        return true;
    }

    private static KvBuffer buffer(KvStore s) {
        if (s instanceof KvBuffer b) return b;
        throw new IllegalArgumentException("a KV store of another backend was passed to the CPU backend");
    }

    @Override
    public void attention(int n, Tensor q, int qStride, int nHead, int nKvHead, int headDim, KvStore[] keys,
                          KvStore[] values, int[] first, int[] last, float scale, Tensor sinks, Tensor out) {
        Attention.attend(n, of(q), qStride, nHead, nKvHead, headDim, keys, values, first, last, scale, of(sinks), of(out));
    }

    @Override
    public void feedForward(FeedForwardWeights ff, Activation activation, Tensor x, int n, Tensor residual) {
        RouteBuffers b = ROUTE.get().ensure(n, 1, 1);
        grouped(ff, activation, of(x), n, 1, b.zeros, b.ones, null, null, of(residual));
    }

    @Override
    public void moe(int layer, MoeWeights w, Routing routing, Activation activation, Tensor xt, int n, Tensor residual,
                    ExpertCounts counts, RoutingTrace trace) {
        float[] x = of(xt);
        int nExp = w.expertCount(), k = routing.k(), width = w.experts().width();
        if (k > nExp) throw new IllegalArgumentException(k + " experts per token of " + nExp);
        RouteBuffers b = ROUTE.get().ensure(n, nExp, k);
        long t0 = FeedForwardStats.enabled ? System.nanoTime() : 0;
        MatMul.mulAll(new MatMul.Task(matrix(w.router()), x, 0, n, b.logits, 0));
        float[] bias = of(w.routerBias()), selectionBias = of(w.selectionBias());
        if (bias != null) for (int t = 0; t < n; t++) addInPlace(b.logits, t * nExp, bias, 0, nExp);
        for (int t = 0; t < n; t++) {
            Router.route(routing, b.logits, t * nExp, nExp, selectionBias, b.router, b.selected, b.weights, t * k);
            if (trace != null) {
                trace.onRouting(layer, t, b.logits, t * nExp, Arrays.copyOfRange(b.selected, t * k, t * k + k),
                        Arrays.copyOfRange(b.weights, t * k, t * k + k));
            }
        }
        if (counts != null) {
            if (!(counts instanceof CpuExpertCounts c)) throw new IllegalArgumentException("counters of another backend");
            c.add(layer, b.selected, 0, n * k);
        }
        if (w.shared() != null) {
            float[] gate = of(w.sharedGate());
            for (int t = 0; t < n; t++) {
                float g = 1f;
                if (gate != null) {
                    float dot = 0;
                    for (int i = 0; i < width; i++) dot += gate[i] * x[t * width + i];
                    g = Activations.sigmoid(dot);
                }
                b.sharedWeights[t] = g;
            }
        }
        if (FeedForwardStats.enabled) FeedForwardStats.routeNanos += System.nanoTime() - t0;
        // The routed experts, then the shared one, mixed in double and added to the residual once (as llama.cpp adds
        // them), expert by expert in ascending id, so each token sums in the same order whatever the batch. With
        // renormalised weights that sum to exactly 1, k identical experts give back exactly their common output
        // (sparse upcycling without noise reproduces the dense model).
        grouped(w.experts(), activation, x, n, k, b.selected, b.weights, w.shared(), b.sharedWeights, of(residual));
    }

    /** Per-thread routing arrays, grown to the largest batch seen. */
    private static final class RouteBuffers {
        float[] logits = new float[0], weights = new float[0], sharedWeights = new float[0], ones = new float[0];
        int[] selected = new int[0], zeros = new int[0];
        final Router.Scratch router = new Router.Scratch();

        RouteBuffers ensure(int n, int nExp, int k) {
            if (logits.length < n * nExp) logits = new float[n * nExp];
            if (selected.length < n * k) {
                selected = new int[n * k];
                weights = new float[n * k];
            }
            router.ensure(nExp);
            if (sharedWeights.length < n) sharedWeights = new float[n];
            if (ones.length < n) {
                ones = new float[n];
                Arrays.fill(ones, 1f);
                zeros = new int[n];
            }
            return this;
        }
    }

    private static final ThreadLocal<RouteBuffers> ROUTE = ThreadLocal.withInitial(RouteBuffers::new);

    /**
     * Feed-forward networks of a stack, with routing, plus an optional shared network: for each token t (of
     * {@code n}, rows of {@code ff.width()} in {@code x}) and each of its {@code k} choices s (ascending network ids),
     * network {@code experts[t * k + s]} is applied to x[t]; the outputs times {@code weights[t * k + s]}, then the
     * shared network's output times {@code sharedWeights[t]}, are summed in double in that order and the sum, rounded
     * to float, is added to {@code residual[t]} (as llama.cpp adds the mixed experts to the residual once). Tokens are
     * grouped by network, so each network's weights are read once per call and networks nobody chose are not read at
     * all. A dense FFN is the case of one network, k = 1, weight 1, no shared network.
     */
    private static void grouped(FeedForwardWeights ff, Activation activation, float[] x, int n, int k, int[] experts,
                                float[] weights, FeedForwardWeights shared, float[] sharedWeights, float[] residual) {
        int count = ff.count(), width = ff.width(), hidden = ff.hidden(), rows = n * k;
        CpuMatrix gate = (CpuMatrix) ff.gate(), up = (CpuMatrix) ff.up(), down = (CpuMatrix) ff.down();
        float[] gateBias = CpuTensor.of(ff.gateBias()), upBias = CpuTensor.of(ff.upBias());
        float[] sGateBias = shared == null ? null : CpuTensor.of(shared.gateBias()), sUpBias = shared == null ? null : CpuTensor.of(shared.upBias());
        Workspace ws = WORKSPACE.get();
        long t0 = FeedForwardStats.enabled ? System.nanoTime() : 0;
        // Group the (token, choice) pairs by network: pairs of network e get consecutive rows from start[e], in
        // token order; rowOf maps a pair to its row.
        int[] start = ws.ints(0, count + 1), rowOf = ws.ints(1, rows), tokenOf = ws.ints(2, rows);
        Arrays.fill(start, 0, count + 1, 0);
        for (int i = 0; i < rows; i++) start[experts[i] + 1]++;
        for (int e = 0; e < count; e++) start[e + 1] += start[e];
        int[] next = ws.ints(3, count);
        System.arraycopy(start, 0, next, 0, count);
        for (int i = 0; i < rows; i++) {
            int row = next[experts[i]]++;
            rowOf[i] = row;
            tokenOf[row] = i / k;
        }
        boolean identity = k == 1 && count == 1; // rows are the tokens in order: no gather needed
        float[] in = identity ? x : ws.floats(0, rows * width);
        if (!identity) {
            rowsParallel(rows, width, (from, to) -> {
                for (int row = from; row < to; row++) System.arraycopy(x, tokenOf[row] * width, in, row * width, width);
            });
        }
        if (FeedForwardStats.enabled) FeedForwardStats.groupNanos += System.nanoTime() - t0;

        // Gate and up of every active network (and the shared one) in one dispatch, down in another.
        int sh = shared != null ? shared.hidden() : 0;
        float[] g = ws.floats(1, rows * hidden), u = ws.floats(2, rows * hidden), out = ws.floats(3, rows * width);
        float[] gs = ws.floats(4, n * sh), us = ws.floats(5, n * sh), outS = ws.floats(6, shared != null ? n * width : 0);
        MatMul.Task[] upTasks = new MatMul.Task[2 * count + 2], downTasks = new MatMul.Task[count + 1];
        int nt = 0, nd = 0;
        for (int e = 0; e < count; e++) {
            int m = start[e + 1] - start[e], r0 = start[e];
            if (m == 0) continue;
            upTasks[nt++] = new MatMul.Task(gate.rows(e * hidden, hidden), in, r0 * width, m, g, r0 * hidden);
            upTasks[nt++] = new MatMul.Task(up.rows(e * hidden, hidden), in, r0 * width, m, u, r0 * hidden);
            downTasks[nd++] = new MatMul.Task(down.rows(e * width, width), g, r0 * hidden, m, out, r0 * width);
        }
        if (shared != null) {
            upTasks[nt++] = new MatMul.Task((CpuMatrix) shared.gate(), x, 0, n, gs, 0);
            upTasks[nt++] = new MatMul.Task((CpuMatrix) shared.up(), x, 0, n, us, 0);
            downTasks[nd++] = new MatMul.Task((CpuMatrix) shared.down(), gs, 0, n, outS, 0);
        }
        MatMul.mulAll(Arrays.copyOf(upTasks, nt));
        int[] expertOfRow = ws.ints(4, rows);
        for (int e = 0; e < count; e++) Arrays.fill(expertOfRow, start[e], start[e + 1], e);
        rowsParallel(rows, hidden, (from, to) -> {
            for (int row = from; row < to; row++) {
                int e = expertOfRow[row], o = row * hidden;
                if (gateBias != null) addInPlace(g, o, gateBias, e * hidden, hidden);
                if (upBias != null) addInPlace(u, o, upBias, e * hidden, hidden);
                Activations.apply(activation, g, o, u, o, hidden);
            }
        });
        if (shared != null) {
            rowsParallel(n, sh, (from, to) -> {
                for (int t = from; t < to; t++) {
                    if (sGateBias != null) addInPlace(gs, t * sh, sGateBias, 0, sh);
                    if (sUpBias != null) addInPlace(us, t * sh, sUpBias, 0, sh);
                    Activations.apply(activation, gs, t * sh, us, t * sh, sh);
                }
            });
        }
        MatMul.mulAll(Arrays.copyOf(downTasks, nd));

        long t1 = FeedForwardStats.enabled ? System.nanoTime() : 0;
        float[] downBias = CpuTensor.of(ff.downBias()), sharedBias = shared != null ? CpuTensor.of(shared.downBias()) : null;
        rowsParallel(n, k * width, (from, to) -> {
            for (int t = from; t < to; t++) {
                int r = t * width;
                for (int c = 0; c < width; c++) {
                    double sum = 0;
                    for (int s = 0; s < k; s++) {
                        int i = t * k + s;
                        float o = out[rowOf[i] * width + c];
                        if (downBias != null) o += downBias[experts[i] * width + c];
                        sum += (double) weights[i] * o;
                    }
                    if (shared != null) {
                        float o = outS[r + c];
                        if (sharedBias != null) o += sharedBias[c];
                        sum += (double) sharedWeights[t] * o;
                    }
                    residual[r + c] += (float) sum;
                }
            }
        });
        if (FeedForwardStats.enabled) FeedForwardStats.combineNanos += System.nanoTime() - t1;
    }

    private static void addInPlace(float[] x, int off, float[] b, int bOff, int n) {
        for (int i = 0; i < n; i++) x[off + i] += b[bOff + i];
    }

    @FunctionalInterface
    private interface Rows {
        void run(int from, int to);
    }

    /** Runs rows [0, rows) on the pool when there is enough work, else on this thread. */
    private static void rowsParallel(int rows, int width, Rows body) {
        if ((long) rows * width < PARALLEL_MIN || rows < 2) {
            body.run(0, rows);
        } else {
            Parallel.split(rows, 1, (w, from, to) -> body.run(from, to));
        }
    }

    /** Growing per-thread arrays for the feed-forward op (rows × widths of one call). */
    private static final class Workspace {
        final float[][] f = new float[7][0];
        final int[][] i = new int[5][0];

        float[] floats(int slot, int n) {
            if (f[slot].length < n) f[slot] = new float[n];
            return f[slot];
        }

        int[] ints(int slot, int n) {
            if (i[slot].length < n) i[slot] = new int[n];
            return i[slot];
        }
    }

    private static final ThreadLocal<Workspace> WORKSPACE = ThreadLocal.withInitial(Workspace::new);
}
