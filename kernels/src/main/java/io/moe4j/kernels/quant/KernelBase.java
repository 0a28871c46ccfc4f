package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;

import java.lang.foreign.MemorySegment;

/**
 * What every {@link BlockFormat} shares: the entry points, and the scalar kernels (decode, then the lane-ordered
 * reduction of {@link QuantSupport#dotLanes}) that run where 256-bit vectors are missing or
 * {@code -Dmoe4j.kernels.scalar=true}. Subclasses provide the SIMD kernels.
 *
 * <p>The SIMD kernels read a row straight from its memory segment, sliced to the row ({@code asSlice}): with the
 * slice's bounds loop-invariant, C2 hoists every range check out of the loop (measured: with the row's offset into
 * the whole tensor instead, three instructions of range check stay with every load). One row at a time, so memory is read
 * in one sequential stream that the hardware prefetcher follows (4 interleaved rows of ~2 KB each read at half the
 * speed), with 4 independent FMA chains per row (the 4 lane groups) to hide the FMA latency. Everything inside the
 * loops is written inline: C2 stops inlining small helper methods once a method has many nodes, and a vector passed
 * to a call that is not inlined is boxed (allocated), which is many times slower.
 */
abstract class KernelBase implements BlockFormat, BlockQuantizer {
    private final GgmlType type;

    KernelBase(GgmlType type) {
        this.type = type;
    }

    private static final ThreadLocal<KernelScratch> SCRATCH = ThreadLocal.withInitial(KernelScratch::new);
    private static final boolean VECTOR = QuantSupport.VECTOR, WIDE = QuantSupport.WIDE;

    @Override
    public final float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        return dot(src, offset, x, xOffset, n, SCRATCH.get());
    }

    @Override
    public final float dot(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        QuantSupport.checkBlocks(n, type.blockSize, type.name());
        if (n == 0) return 0f;
        return VECTOR ? (WIDE ? dotWide(src, offset, x, xOffset, n, scratch) : dotVector(src, offset, x, xOffset, n, scratch))
                : dotScalar(src, offset, x, xOffset, n, scratch);
    }

    @Override
    public final void dotTokens(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int tokens, int n,
                                float[] out, int outOffset, int outStride, KernelScratch scratch) {
        QuantSupport.checkBlocks(n, type.blockSize, type.name());
        int t = 0;
        if (VECTOR && WIDE && n > 0) {
            while (t + 4 <= tokens && dotWide4(src, offset, x, xOffset + t * xStride, xStride, n, out, outOffset + t * outStride, outStride)) t += 4;
            while (t + 2 <= tokens && dotWide2(src, offset, x, xOffset + t * xStride, xStride, n, out, outOffset + t * outStride, outStride)) t += 2;
        }
        for (; t < tokens; t++) out[outOffset + t * outStride] = dot(src, offset, x, xOffset + t * xStride, n, scratch);
    }

    @Override
    public final int rowKernelMaxTokens() {
        return VECTOR && WIDE ? wideRowKernelMaxTokens() : 3;
    }

    /** {@link #rowKernelMaxTokens} with 512-bit kernels: 7 where {@link #dotWide4} exists (Q8_0, Q4_0, MXFP4), else 3. */
    int wideRowKernelMaxTokens() {
        return 3;
    }

    @Override
    public final void dequantizeLanes(MemorySegment src, long offset, float[] dst, int dstOffset, int n, KernelScratch scratch) {
        QuantSupport.checkBlocks(n, type.blockSize, type.name());
        if (n == 0) return;
        if (VECTOR) {
            dequantizeLanesVector(src, offset, dst, dstOffset, n, (n & ~31) / 2, scratch);
        } else {
            float[] row = scratch.row(n);
            dequantize(src, offset, row, 0, n);
            toLaneOrder(row, 0, dst, dstOffset, n);
        }
    }

    /** Copies {@code n} floats in natural order into lane-group order (see {@link BlockFormat#dequantizeLanes}). */
    static void toLaneOrder(float[] src, int srcOffset, float[] dst, int dstOffset, int n) {
        int n32 = n & ~31, h = n32 / 2;
        for (int i = 0; i < n32; i++) {
            int r = i & 31;
            dst[dstOffset + (r < 16 ? 0 : h) + (i >>> 5) * 16 + (r & 15)] = src[srcOffset + i];
        }
        for (int i = n32; i < n; i++) dst[dstOffset + i] = src[srcOffset + i];
    }

    /** The reference: the row decoded, then the lane-ordered reduction. */
    final float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        float[] row = scratch.row(n);
        dequantize(src, offset, row, 0, n);
        return QuantSupport.dotLanes(row, 0, x, xOffset, n);
    }

    /**
     * The SIMD dot of one row. Implementations slice the row out of {@code src} first ({@code asSlice}, inside the
     * compiled method so that the slice object is scalar-replaced): with the slice's size loop-invariant, C2 hoists
     * every range check out of the loop.
     */
    abstract float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch);

    /**
     * {@link #dotVector} with 512-bit registers (lanes 0-15 of the first register are lane groups 0 and 1, of the
     * second groups 2 and 3): the same floats. Types without such a kernel use the 256-bit one. These read the row at
     * its offset in {@code src} without slicing: the slice object was not scalar-replaced in the engine's call path
     * and its allocation and bounds check cost about 12% of decode time, more than the range checks left in the loop.
     */
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        return dotVector(src, offset, x, xOffset, n, scratch);
    }

    /**
     * {@link #dotTokens} for 2 (or 4) tokens with 512-bit registers, for the types that have such a kernel (false:
     * not done). Each token keeps its own two accumulators in {@link #dotWide}'s order, so the floats are the same;
     * the 4 (8) independent FMA chains also hide more of the FMA latency than one token's two.
     */
    boolean dotWide2(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int n, float[] out, int outOffset, int outStride) {
        return false;
    }

    /** {@link #dotWide2} for 4 tokens. */
    boolean dotWide4(MemorySegment src, long offset, float[] x, int xOffset, int xStride, int n, float[] out, int outOffset, int outStride) {
        return false;
    }

    /** The SIMD decode of one row into lane-group order; q = (n rounded down to 32) / 2, where the second halves start. */
    abstract void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch);
}
