package io.moe4j.kernels.cpu;

import io.moe4j.kernels.quant.BlockFormat;
import io.moe4j.kernels.quant.BlockFormats;
import io.moe4j.kernels.quant.FloatTiles;
import io.moe4j.kernels.quant.InterleavedFormat;
import io.moe4j.kernels.quant.KernelScratch;

import java.lang.foreign.MemorySegment;

/**
 * Weight matrix times activations: the operation that dominates inference time.
 *
 * <p>Two paths, one arithmetic. For 1-3 tokens (decode) the fused decode-and-dot kernel of the weight type runs row
 * after row, reading the matrix as one sequential stream (what the memory-bandwidth roofline needs). For 4 tokens or
 * more (prefill, batches) a block of up to 16 rows is decoded once into a float panel and multiplied by the tokens
 * 4 × 4 at a time ({@link FloatTiles}), so each weight is read from memory once per batch and each decoded weight
 * feeds several FMAs. Both compute every output element in the order {@link BlockFormat} fixes, so a token's result
 * does not depend on the path, the batch or the thread split (batch invariance).
 *
 * <p>Rows are handed out to the threads of {@link Parallel} in chunks; several independent products can share one
 * dispatch ({@link #mulAll}), e.g. the query, key and value projections, or the experts of a MoE layer.
 */
public final class MatMul {
    private MatMul() {
    }

    /** One product of a batch: {@code out[outOffset + t * w.rows() + r] = dot(w row r, x[xOffset + t * w.cols() ..])}. */
    public record Task(CpuMatrix w, float[] x, int xOffset, int n, float[] out, int outOffset) {
        public Task {
            if (n < 0) throw new IllegalArgumentException("negative token count " + n);
            if (xOffset < 0 || (long) xOffset + (long) n * w.cols() > x.length) throw new IllegalArgumentException("input too short");
            if (outOffset < 0 || (long) outOffset + (long) n * w.rows() > out.length) throw new IllegalArgumentException("output too short");
        }
    }

    /**
     * Whether the panel (matrix × matrix) kernels run for this product; else the fused row kernels, which decode each
     * block once for up to 4 tokens where the weight type has such a kernel (measured, Q8_0 1024 × 2048, 2 threads:
     * 4 tokens 211 GFLOP/s with rows, 125 with panels; 8 tokens about equal). Interleaved matrices, whose row kernels
     * decode each block once for 4 tokens, take the row path further (see {@link InterleavedFormat#rowKernelMaxTokens}).
     */
    private static boolean panels(Task t) {
        int max = BlockFormats.of(t.w.type()).rowKernelMaxTokens();
        if (t.w.interleaved()) max = Math.max(max, BlockFormats.interleaved(t.w.type()).rowKernelMaxTokens());
        return t.n > max;
    }

    /**
     * out[t][r] = dot(w.row(r), x[t]) for t in [0, nTokens): {@code x} holds nTokens rows of {@code w.cols()}
     * floats starting at {@code xOffset}, {@code out} receives nTokens rows of {@code w.rows()} floats at
     * {@code outOffset}. Each output element's reduction runs in the same order whatever nTokens is.
     */
    public static void mul(CpuMatrix w, float[] x, int xOffset, int nTokens, float[] out, int outOffset) {
        mulAll(new Task(w, x, xOffset, nTokens, out, outOffset));
    }

    /** Runs independent products in one parallel dispatch. */
    public static void mulAll(Task... tasks) {
        int nt = tasks.length;
        int[] first = new int[nt + 1];
        int[] unit = new int[nt];
        // Panel tasks read their tokens in lane-group order: converted once here, shared by all threads. A task has
        // lx[j] exactly when it runs the panel kernels.
        float[][] lx = new float[nt][];
        int[] lxOff = new int[nt];
        boolean anyPanels = false;
        for (int j = 0; j < nt; j++) {
            Task t = tasks[j];
            boolean panels = panels(t);
            unit[j] = unitRows(t, panels);
            int units = t.n == 0 || t.w.rows() == 0 ? 0 : (t.w.rows() + unit[j] - 1) / unit[j];
            first[j + 1] = first[j] + units;
            if (units > 0 && panels) {
                anyPanels = true;
                int same = -1;
                for (int i = 0; i < j; i++) {
                    Task o = tasks[i];
                    if (lx[i] != null && o.x == t.x && o.xOffset == t.xOffset && o.n == t.n && o.w.cols() == t.w.cols()) same = i;
                }
                if (same >= 0) {
                    lx[j] = lx[same];
                    lxOff[j] = lxOff[same];
                } else {
                    int cols = t.w.cols();
                    lx[j] = new float[t.n * cols];
                    for (int tok = 0; tok < t.n; tok++) FloatTiles.toLaneOrder(t.x, t.xOffset + tok * cols, lx[j], tok * cols, cols);
                }
            }
        }
        int total = first[nt];
        if (total == 0) return;
        Parallel.RangeTask work = (worker, from, to) -> {
            Buffers b = BUFFERS.get();
            int j = 0;
            for (int u = from; u < to; u++) {
                while (u >= first[j + 1]) j++;
                Task t = tasks[j];
                int rows = unit[j], r0 = (u - first[j]) * rows, r1 = Math.min(t.w.rows(), r0 + rows);
                if (lx[j] == null) rowsKernel(t, r0, r1, b);
                else panelKernel(t, lx[j], lxOff[j], r0, r1, b);
            }
        };
        // Row kernels (decode) stream the weights: each thread reads its own contiguous share, unit after unit.
        // Panels are compute-bound: chunks handed out as threads become free.
        if (anyPanels) Parallel.dynamic(total, Parallel.chunkFor(total, 64, 1), work);
        else Parallel.contiguous(total, 1, work);
    }

    /** Rows per unit of work: 16 for the row kernels, a panel of 4 to 16 rows (at most ~128 KB of floats) otherwise. */
    private static int unitRows(Task t, boolean panels) {
        if (!panels) return 16;
        return Math.max(4, Math.min(16, (32768 / Math.max(1, t.w.cols())) & ~3));
    }

    private static void rowsKernel(Task t, int r0, int r1, Buffers b) {
        CpuMatrix w = t.w;
        int cols = w.cols(), rows = w.rows();
        MemorySegment data = w.data();
        KernelScratch scratch = b.scratch;
        if (w.interleaved()) {
            // Units start at multiples of 4 rows: [r0, r1) is whole groups, but for the last rows of the matrix.
            InterleavedFormat f = BlockFormats.interleaved(w.type());
            float[] four = b.four; // the 4 rows of one token, or of 2 or 4 tokens (pair and quad kernels)
            long group = w.groupOffset(r0), groupBytes = f.groupBytes(cols);
            for (int r = r0; r < r1; r += InterleavedFormat.ROWS, group += groupBytes) {
                int valid = Math.min(InterleavedFormat.ROWS, r1 - r), tok = 0;
                // Four tokens at a time where the type has a quad kernel, then two (each block decoded once for them)
                for (; tok + 4 <= t.n && f.dot4Quad(data, group, t.x, t.xOffset + tok * cols, cols, cols, four, scratch); tok += 4) {
                    for (int q = 0; q < 4; q++) System.arraycopy(four, q * InterleavedFormat.ROWS, t.out, t.outOffset + (tok + q) * rows + r, valid);
                }
                for (; tok + 2 <= t.n && f.dot4Pair(data, group, t.x, t.xOffset + tok * cols, cols, cols, four, scratch); tok += 2) {
                    System.arraycopy(four, 0, t.out, t.outOffset + tok * rows + r, valid);
                    System.arraycopy(four, InterleavedFormat.ROWS, t.out, t.outOffset + (tok + 1) * rows + r, valid);
                }
                for (; tok < t.n; tok++) {
                    f.dot4(data, group, t.x, t.xOffset + tok * cols, cols, four, scratch);
                    System.arraycopy(four, 0, t.out, t.outOffset + tok * rows + r, valid);
                }
            }
            return;
        }
        BlockFormat f = BlockFormats.of(w.type());
        long rowBytes = w.rowBytes();
        for (int r = r0; r < r1; r++) {
            f.dotTokens(data, r * rowBytes, t.x, t.xOffset, cols, t.n, cols, t.out, t.outOffset + r, rows, scratch);
        }
    }

    private static void panelKernel(Task t, float[] x, int xOff, int r0, int r1, Buffers b) {
        CpuMatrix w = t.w;
        BlockFormat f = BlockFormats.of(w.type());
        int cols = w.cols(), rows = w.rows(), nr = r1 - r0;
        long rowBytes = w.rowBytes();
        float[] panel = b.panel(((nr + 3) & ~3) * cols);
        if (w.interleaved()) {
            // Panels start at multiples of 4 rows (unitRows), as the row kernel's units do: step the group offset.
            InterleavedFormat fi = BlockFormats.interleaved(w.type());
            long group = w.groupOffset(r0), groupBytes = fi.groupBytes(cols);
            for (int i = 0; i < nr; i++) {
                fi.dequantizeLanes(w.data(), group + i / InterleavedFormat.ROWS * groupBytes, i % InterleavedFormat.ROWS, panel, i * cols, cols, b.scratch);
            }
        } else {
            for (int i = 0; i < nr; i++) f.dequantizeLanes(w.data(), (r0 + i) * rowBytes, panel, i * cols, cols, b.scratch);
        }
        int n = t.n, full = n & ~3;
        // Row tile outer: its 4 decoded rows stay in L1 while every token tile streams past them.
        for (int rr = 0; rr < nr; rr += 4) {
            int valid = Math.min(4, nr - rr);
            for (int tok = 0; tok < full; tok += 4) {
                FloatTiles.tile4x4(panel, rr * cols, cols, x, xOff + tok * cols, cols, cols,
                        t.out, t.outOffset + tok * rows + r0 + rr, 1, rows, valid, b.lanes);
            }
            for (int tok = full; tok < n; tok++) {
                FloatTiles.tile4x1(panel, rr * cols, cols, x, xOff + tok * cols, cols,
                        t.out, t.outOffset + tok * rows + r0 + rr, 1, valid, b.lanes);
            }
        }
    }

    /** Per-thread buffers: the decoded float panel, tile partial sums, kernel scratch. */
    private static final class Buffers {
        float[] panel = new float[0];
        final float[] lanes = new float[FloatTiles.LANES];
        final float[] four = new float[4 * InterleavedFormat.ROWS];
        final KernelScratch scratch = new KernelScratch();

        float[] panel(int n) {
            if (panel.length < n) panel = new float[n];
            return panel;
        }
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    /** Decodes row {@code r} of {@code w} into {@code dst[dstOffset..]} (embedding look-ups). */
    public static void row(CpuMatrix w, int r, float[] dst, int dstOffset) {
        if (w.interleaved()) {
            BlockFormats.interleaved(w.type()).dequantize(w.data(), w.groupOffset(r), r % InterleavedFormat.ROWS, dst, dstOffset, w.cols());
            return;
        }
        BlockFormats.of(w.type()).dequantize(w.data(), r * w.rowBytes(), dst, dstOffset, w.cols());
    }
}
