package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * How one ggml weight type is decoded: the single place that knows a type's block layout. Everything above the
 * kernels sees weights only through this interface (and {@link io.moe4j.kernels.WeightMatrix}).
 */
public interface BlockFormat {

    /** Decodes {@code n} elements (a multiple of the block size) starting at byte {@code offset} into {@code dst}. */
    void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n);

    /**
     * The dot product of {@code n} encoded elements starting at byte {@code offset} with {@code x[xOffset..]}:
     * mathematically the dot product of the {@link #dequantize decoded} weights, computed in float32 (SIMD, with
     * per-block scales factored out, so the rounding order differs from a sequential loop). Allocates nothing
     * (beyond a 256-byte buffer per thread on its first K-quant call) and is safe to call from several threads.
     */
    float dot(MemorySegment src, long offset, float[] x, int xOffset, int n);
}
