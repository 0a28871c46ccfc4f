package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * A weight type's second layout, made at load time for the decode kernels: rows interleaved in groups of
 * {@link #ROWS}, block by block (block b of rows 0..3, then block b+1 of rows 0..3, ...), so that one sequential
 * stream feeds four rows at once. Why: a single row's dot product is one chain of dependent FMAs per accumulator,
 * and four rows give the core four independent chains and share each activation load, without a second memory
 * stream (two streams per thread lose the hardware prefetcher). Types whose block scale is costly to convert
 * store it as a float here.
 *
 * <p>Group g holds rows 4g..4g+3 in {@link #groupBytes} bytes at {@code g * groupBytes}; a matrix whose row count
 * is not a multiple of 4 has its last group padded with zero rows. The numerics are {@link BlockFormat}'s: every
 * row's dot product is the same float as the row-major kernel's.
 */
public interface InterleavedFormat {
    /** Rows per group. */
    int ROWS = 4;

    /** Bytes of one group of {@link #ROWS} rows of {@code n} elements. */
    long groupBytes(int n);

    /**
     * Packs the {@code rows} (at most {@link #ROWS}) row-major rows of {@code n} elements at {@code src[offset..]},
     * {@code rowBytes} apart, into the group at {@code dst[dstOffset..]}; missing rows become zeros.
     */
    void pack(MemorySegment src, long offset, long rowBytes, int rows, int n, MemorySegment dst, long dstOffset);

    /** The dot products of the 4 rows of the group at {@code group} with {@code x[xOffset..]}: {@code out[0..3]}. */
    void dot4(MemorySegment src, long group, float[] x, int xOffset, int n, float[] out, KernelScratch scratch);

    /**
     * {@link #dot4} for two tokens, {@code x[xOffset..]} and {@code x[xOffset + xStride..]}, each block decoded once
     * for both: {@code out[0..3]} the first token's, {@code out[4..7]} the second's, each the same float as
     * {@link #dot4} gives. False where there is no such kernel (CPUs without 512-bit vectors; nothing is written then).
     */
    boolean dot4Pair(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch);

    /**
     * {@link #dot4} for four tokens, {@code x[xOffset + t * xStride..]} for t in 0..3, each block decoded once for all
     * four: {@code out[4 * t + r]} is row r's dot product with token t, the same float as {@link #dot4} gives. False
     * where there is no such kernel (nothing is written then).
     */
    boolean dot4Quad(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch);

    /**
     * Up to this many tokens the row kernels of this layout ({@link #dot4}, {@link #dot4Pair}, {@link #dot4Quad}) beat
     * decoding float panels for the matrix kernels; 0 where the row-major type's
     * {@link BlockFormat#rowKernelMaxTokens} holds.
     */
    int rowKernelMaxTokens();

    /** Row {@code slot} of the group at {@code group}, decoded as {@link BlockFormat#dequantize} decodes it. */
    void dequantize(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n);

    /** Row {@code slot} of the group, in lane-group order (see {@link BlockFormat#dequantizeLanes}). */
    void dequantizeLanes(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n, KernelScratch scratch);
}
