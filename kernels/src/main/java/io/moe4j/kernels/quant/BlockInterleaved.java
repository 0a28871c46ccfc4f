package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * What the {@link InterleavedFormat}s of the block types share: a group is a sequence of steps, step b
 * holding block b of each of the 4 rows ({@link #step} bytes, {@link #block} per row, made from the file's
 * {@link #srcBlock} bytes by {@link #packBlock}, arranged within the step as the subclass chooses); packing, the
 * scalar decode, and the scalar kernels for CPUs without 512-bit vectors. Subclasses write the block conversion and
 * decode, and the vector kernels ({@link #dot4}, {@link #dot4Pair}, {@link #dot4Quad}, {@link #dequantizeLanes}).
 */
abstract class BlockInterleaved implements InterleavedFormat {
    /** Weights per sub-block of the kernels (a block of the 32-weight types; super-blocks are 8 of them). */
    static final int QK = 32;

    private final String name;
    /** Weights per block; bytes of a block in the file, here, and of a step (one block of all 4 rows). */
    final int weights, srcBlock, block, step;

    BlockInterleaved(String name, int weights, int srcBlock, int block) {
        this.name = name;
        this.weights = weights;
        this.srcBlock = srcBlock;
        this.block = block;
        this.step = ROWS * block;
    }

    /**
     * Writes the file's block at {@code src[from..]} as row {@code slot}'s block of the step at {@code dst[step..]}:
     * every byte of that row's share of the step (the memory is not cleared before, see {@link io.moe4j.kernels.cpu.UnclearedMemory}).
     */
    abstract void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot);

    /** Decodes the weights of row {@code slot}'s block in the step at {@code step} into {@code dst[o..]}. */
    abstract void decodeBlock(MemorySegment src, long step, int slot, float[] dst, int o);

    final void check(int n) {
        QuantSupport.checkBlocks(n, weights, name);
    }

    @Override
    public final long groupBytes(int n) {
        check(n);
        return (long) step * (n / weights);
    }

    @Override
    public final void pack(MemorySegment src, long offset, long rowBytes, int rows, int n, MemorySegment dst, long dstOffset) {
        check(n);
        if (rows < 0 || rows > ROWS) throw new IllegalArgumentException("a group holds 0 to " + ROWS + " rows, not " + rows);
        if (rows < ROWS) dst.asSlice(dstOffset, groupBytes(n)).fill((byte) 0);
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < n / weights; b++) packBlock(src, offset + r * rowBytes + (long) srcBlock * b, dst, dstOffset + (long) step * b, r);
        }
    }

    @Override
    public final void dequantize(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n) {
        check(n);
        for (int b = 0; b < n / weights; b++) decodeBlock(src, group + (long) step * b, slot, dst, dstOffset + b * weights);
    }

    /**
     * With 512-bit vectors: quads, then a pair and a single token, up to 11 tokens (every type here has the pair and
     * four-token kernels). Measured (1024 × 2048, 2 threads, matrix in L3, GFLOP/s, rows against panels):
     * Q8_0 8 tokens 128 against 110, 12 tokens 132 against 134, 16 tokens 130 against 144; Q4_K 8 tokens
     * 110 against 111, 10 113 against 104, 11 105 against 92; Q6_K 10 tokens 122 against 111, 11 112 against 101.
     */
    @Override
    public final int rowKernelMaxTokens() {
        return QuantSupport.WIDE ? 11 : 0;
    }

    /**
     * The results of a four-token kernel that runs in two passes, one per half of every block ({@code lo}: each row
     * and token's 16-lane accumulator of weights 0-15 of every block, {@code hi}: of weights 16-31, 16 floats per
     * pair of row r and token t at {@code 16 * (4 * t + r)}): {@code out[4 * t + r]}, reduced as {@link #sum16}
     * reduces lo + hi, so each is the float {@link #dot4} gives. Overwrites {@code lo}.
     */
    static void sumQuad(float[] lo, float[] hi, float[] out) {
        for (int i = 0; i < 256; i++) lo[i] += hi[i]; // lo + hi lane by lane, as a0.add(a1) in dot4
        for (int k = 0; k < 16; k++) out[k] = sum16(lo, 16 * k);
    }

    /**
     * The final reduction of one row's two 16-lane accumulators, stored added (lo + hi) at {@code l[o..o+15]}: lanes
     * i and i + 8 added, then those 8 sums as ((h0+h1)+(h2+h3))+((h4+h5)+(h6+h7)), the order {@link BlockFormat}
     * fixes. Why through memory: written with vectors (a 256-bit half, lane extracts) each reduction added ~40 nodes
     * to C2's graph of the kernel, and a helper taking vectors boxes them where C2 does not inline it. The kernels with
     * 8 results came close to C2's inlining node budget; once other kernels had run first (another weight type of
     * the same model) and left two-type profiles in the shared Vector API code, they went over it, were compiled
     * without the vector intrinsics and ran 2-3x slower (measured: Q4_K's pair kernel 67 against 213 us when Q6_K
     * ran first, Q6_K's single-token kernel 74 against 150 us when Q4_K did).
     */
    static float sum16(float[] l, int o) {
        float h0 = l[o] + l[o + 8], h1 = l[o + 1] + l[o + 9], h2 = l[o + 2] + l[o + 10], h3 = l[o + 3] + l[o + 11];
        float h4 = l[o + 4] + l[o + 12], h5 = l[o + 5] + l[o + 13], h6 = l[o + 6] + l[o + 14], h7 = l[o + 7] + l[o + 15];
        return ((h0 + h1) + (h2 + h3)) + ((h4 + h5) + (h6 + h7));
    }

    /** {@link #sum16} of the 4 rows stored at {@code l[0..63]}, into {@code out[o..o+3]}. */
    static void sum16x4(float[] l, float[] out, int o) {
        for (int k = 0; k < 4; k++) out[o + k] = sum16(l, 16 * k);
    }

    /** The scalar forms of {@link #dequantizeLanes} and {@link #dot4}, for CPUs without 512-bit vectors. */
    final void dequantizeLanesScalar(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n, KernelScratch scratch) {
        float[] row = scratch.row(n);
        dequantize(src, group, slot, row, 0, n);
        KernelBase.toLaneOrder(row, 0, dst, dstOffset, n);
    }

    final void dot4Scalar(MemorySegment src, long group, float[] x, int xOffset, int n, float[] out, KernelScratch scratch) {
        float[] row = scratch.row(n);
        for (int r = 0; r < ROWS; r++) {
            dequantize(src, group, r, row, 0, n);
            out[r] = QuantSupport.dotLanes(row, 0, x, xOffset, n);
        }
    }
}
