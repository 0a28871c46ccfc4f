package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * How one ggml weight type is decoded: the single place that knows a type's block layout. Everything above the
 * kernels sees weights only through this interface (and {@link io.moe4j.kernels.cpu.CpuMatrix}).
 *
 * <p><b>Numerics of every dot product</b> (one row, or rows times tokens in {@link io.moe4j.kernels.cpu.MatMul}): the
 * weights are decoded exactly as {@link #dequantize} decodes them; weight i (below the last multiple of 32) is
 * multiplied into accumulator lane i % 32 with a fused multiply-add, in increasing i; the four groups of 8 lanes
 * g0..g3 are combined lane by lane as (g0 + g2) + (g1 + g3) and those 8 lanes summed as
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); the last n % 32 elements (plain float types only) are then added one at a
 * time with a fused multiply-add. So a row's dot product is the same float whatever else is computed with it (other
 * rows, other tokens of a batch, another thread split) and whether the SIMD or the scalar kernels run: the basis of
 * batch invariance.
 */
public interface BlockFormat {

    /** Decodes {@code n} elements (a multiple of the block size) starting at byte {@code offset} into {@code dst}. */
    void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n);

    /**
     * The dot product of {@code n} encoded elements starting at byte {@code offset} with {@code x[xOffset..]}, in the
     * order described above. Allocates nothing (beyond small per-thread buffers on first use) and is safe to call
     * from several threads.
     */
    float dot(MemorySegment src, long offset, float[] x, int xOffset, int n);

    /** {@link #dot(MemorySegment, long, float[], int, int)} with the caller's per-thread scratch (the fast path). */
    float dot(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch);

    /**
     * The dot products of one row with {@code tokens} vectors: {@code out[outOffset + t * outStride]} = the
     * {@link #dot} of the row with {@code x[xOffset + t * xStride ..]}, the same floats, but the SIMD kernels decode
     * each block once for up to 4 tokens (the row kernel of small batches, e.g. the experts that only a few of a
     * batch's tokens chose).
     */
    void dotTokens(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int tokens, int n, float[] out,
                   int outOffset, int outStride, KernelScratch scratch);

    /** Up to this many tokens the row kernel ({@link #dotTokens}) beats decoding a panel for the matrix kernels. */
    int rowKernelMaxTokens();

    /**
     * Decodes {@code n} elements like {@link #dequantize}, but stores them in <i>lane-group order</i>, the layout of
     * the matrix kernels ({@link FloatTiles}): with n32 = n rounded down to a multiple of 32, the first 16 elements of
     * every 32 (lane groups 0 and 1) go to the first half, {@code dst[dstOffset + 16 * (i / 32) + i % 16]}, the other
     * 16 (groups 2 and 3) to the second half, {@code dst[dstOffset + n32 / 2 + 16 * (i / 32) + i % 32 - 16]}; element
     * i &ge; n32 to {@code dst[dstOffset + i]}. A pass over one half feeds two lane groups, 8 floats each per step
     * (one 512-bit register holds both).
     */
    void dequantizeLanes(MemorySegment src, long offset, float[] dst, int dstOffset, int n, KernelScratch scratch);
}
