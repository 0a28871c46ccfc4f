package io.moe4j.kernels.quant;

/**
 * Per-thread working memory of the kernels (scale tables, unpacked codes, a decoded row), handed in by the caller so
 * that the per-row kernels need no thread-local look-ups. Not thread-safe: one per thread.
 */
public final class KernelScratch {
    final float[] f = new float[64];
    /** The two passes' accumulators of the four-token kernels: 16 (row, token) pairs of 16 lanes each. */
    final float[] lo = new float[256], hi = new float[256];
    final byte[] b = new byte[256];
    float[] row = new float[0];

    float[] row(int n) {
        if (row.length < n) row = new float[n];
        return row;
    }
}
