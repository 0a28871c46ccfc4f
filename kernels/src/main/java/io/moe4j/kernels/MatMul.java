package io.moe4j.kernels;

import io.moe4j.kernels.quant.BlockFormat;
import io.moe4j.kernels.quant.BlockFormats;

/** Weight matrix times activations: the operation that dominates inference time. */
public final class MatMul {
    private MatMul() {
    }

    /**
     * out[t][r] = dot(w.row(r), x[t]) for t in [0, nTokens): {@code x} holds nTokens rows of {@code w.cols()}
     * floats starting at {@code xOffset}, {@code out} receives nTokens rows of {@code w.rows()} floats at
     * {@code outOffset}. Each output element's reduction runs in the same order whatever nTokens is.
     */
    public static void mul(WeightMatrix w, float[] x, int xOffset, int nTokens, float[] out, int outOffset) {
        BlockFormat f = BlockFormats.of(w.type());
        int cols = w.cols(), rows = w.rows();
        long rowBytes = w.rowBytes();
        Parallel.forRange(rows, r -> {
            long off = r * rowBytes;
            for (int t = 0; t < nTokens; t++) {
                out[outOffset + t * rows + r] = f.dot(w.data(), off, x, xOffset + t * cols, cols);
            }
        });
    }

    /** Decodes row {@code r} of {@code w} into {@code dst[dstOffset..]} (embedding look-ups). */
    public static void row(WeightMatrix w, int r, float[] dst, int dstOffset) {
        BlockFormats.of(w.type()).dequantize(w.data(), r * w.rowBytes(), dst, dstOffset, w.cols());
    }
}
