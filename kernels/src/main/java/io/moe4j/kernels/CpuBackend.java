package io.moe4j.kernels;

import io.moe4j.kernels.ops.Activations;
import io.moe4j.kernels.ops.Attention;
import io.moe4j.kernels.ops.FeedForwardWeights;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.kernels.ops.RmsNorm;
import io.moe4j.kernels.ops.Rope;

import java.util.Arrays;

/** {@link Backend} on the CPU: the SIMD kernels of this module on the {@link Parallel} worker pool. */
final class CpuBackend implements Backend {
    static final CpuBackend INSTANCE = new CpuBackend();

    /** Work below this many floats runs on the calling thread (a dispatch costs more than it saves). */
    private static final int PARALLEL_MIN = 1 << 15;

    private CpuBackend() {
    }

    @Override
    public void matmul(MatMul.Task... tasks) {
        MatMul.mulAll(tasks);
    }

    @Override
    public void rmsNorm(float[] x, int xOffset, int rows, int width, float[] weight, float eps, float[] out, int outOffset) {
        rowsParallel(rows, width, (from, to) -> {
            for (int r = from; r < to; r++) RmsNorm.apply(out, outOffset + r * width, x, xOffset + r * width, weight, width, eps);
        });
    }

    @Override
    public void rope(Rope rope, float[] x, int offset, int rows, int stride, int heads, int headDim, float[] cos, float[] sin) {
        int half = rope.nRot() / 2;
        rowsParallel(rows, heads * headDim, (from, to) -> {
            for (int r = from; r < to; r++) rope.apply(x, offset + r * stride, heads, headDim, cos, sin, r * half);
        });
    }

    @Override
    public void add(float[] x, int xOffset, float[] y, int yOffset, int n) {
        for (int i = 0; i < n; i++) x[xOffset + i] += y[yOffset + i];
    }

    @Override
    public void embed(WeightMatrix table, int row, float[] out, int outOffset) {
        MatMul.row(table, row, out, outOffset);
    }

    @Override
    public void addBias(float[] x, int rows, int width, float[] bias) {
        if (bias == null) return;
        for (int r = 0; r < rows; r++) addInPlace(x, r * width, bias, 0, width);
    }

    @Override
    public void attention(int n, float[] q, int qStride, int nHead, int nKvHead, int headDim, KvBuffer[] keys,
                          KvBuffer[] values, int[] first, int[] last, float scale, float[] sinks, float[] out) {
        Attention.attend(n, q, qStride, nHead, nKvHead, headDim, keys, values, first, last, scale, sinks, out);
    }

    @Override
    public void feedForward(FeedForwardWeights ff, Activations.Gated activation, float[] x, int n, int k, int[] experts,
                            float[] weights, FeedForwardWeights shared, float[] sharedWeights, float[] residual) {
        int count = ff.count(), width = ff.width(), hidden = ff.hidden(), rows = n * k;
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
            upTasks[nt++] = new MatMul.Task(ff.gate().rows(e * hidden, hidden), in, r0 * width, m, g, r0 * hidden);
            upTasks[nt++] = new MatMul.Task(ff.up().rows(e * hidden, hidden), in, r0 * width, m, u, r0 * hidden);
            downTasks[nd++] = new MatMul.Task(ff.down().rows(e * width, width), g, r0 * hidden, m, out, r0 * width);
        }
        if (shared != null) {
            upTasks[nt++] = new MatMul.Task(shared.gate(), x, 0, n, gs, 0);
            upTasks[nt++] = new MatMul.Task(shared.up(), x, 0, n, us, 0);
            downTasks[nd++] = new MatMul.Task(shared.down(), gs, 0, n, outS, 0);
        }
        MatMul.mulAll(Arrays.copyOf(upTasks, nt));
        int[] expertOfRow = ws.ints(4, rows);
        for (int e = 0; e < count; e++) Arrays.fill(expertOfRow, start[e], start[e + 1], e);
        rowsParallel(rows, hidden, (from, to) -> {
            for (int row = from; row < to; row++) {
                int e = expertOfRow[row], o = row * hidden;
                if (ff.gateBias() != null) addInPlace(g, o, ff.gateBias(), e * hidden, hidden);
                if (ff.upBias() != null) addInPlace(u, o, ff.upBias(), e * hidden, hidden);
                Activations.apply(activation, g, o, u, o, hidden);
            }
        });
        if (shared != null) {
            rowsParallel(n, sh, (from, to) -> {
                for (int t = from; t < to; t++) {
                    if (shared.gateBias() != null) addInPlace(gs, t * sh, shared.gateBias(), 0, sh);
                    if (shared.upBias() != null) addInPlace(us, t * sh, shared.upBias(), 0, sh);
                    Activations.apply(activation, gs, t * sh, us, t * sh, sh);
                }
            });
        }
        MatMul.mulAll(Arrays.copyOf(downTasks, nd));

        long t1 = FeedForwardStats.enabled ? System.nanoTime() : 0;
        float[] downBias = ff.downBias(), sharedBias = shared != null ? shared.downBias() : null;
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
