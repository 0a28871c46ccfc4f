package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_SHORT;

/**
 * The {@link InterleavedFormat} of the types whose 32-weight blocks are an f16 scale d then {@code codeBytes} bytes of
 * codes (Q4_0, Q8_0): for each block, the 4 rows' blocks in turn, each the scale as a float (the file's f16,
 * converted once) then the codes as in the file. The float scale is what makes the interleaving pay (measured on
 * Q4_0, one core, L2-resident, 2048 columns, GB/s of file bytes: row-major 14, row-major with float scales 16.5,
 * 4 rows interleaved with f16 scales 15, with float scales 25): converting an f16 in the loop (movsx, vmovd,
 * vcvtph2ps, broadcast) costs as much as the rest of a Q4_0 block, and the Vector API has no vector f16
 * conversion. Blocks grow by 2 bytes (Q4_0 18 to 20, Q8_0 34 to 36).
 *
 * <p>Subclasses write the vector kernels ({@link #dot4}, {@link #dequantizeLanes}) and the scalar decode of a block.
 */
abstract class ScaledInterleaved implements InterleavedFormat {
    static final int QK = 32;
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);

    private final String name;
    /** Bytes of a block in the file (f16 + codes), here (float + codes), and of one block of all 4 rows. */
    final int srcBlock, block, step;

    ScaledInterleaved(String name, int codeBytes) {
        this.name = name;
        this.srcBlock = 2 + codeBytes;
        this.block = 4 + codeBytes;
        this.step = ROWS * block;
    }

    /** Decodes the 32 weights of the block whose codes start at {@code codes}, scale {@code d}, into {@code dst[o..]}. */
    abstract void decodeBlock(MemorySegment src, long codes, float d, float[] dst, int o);

    final void check(int n) {
        QuantSupport.checkBlocks(n, QK, name);
    }

    @Override
    public final long groupBytes(int n) {
        check(n);
        return (long) step * (n / QK);
    }

    @Override
    public final void pack(MemorySegment src, long offset, long rowBytes, int rows, int n, MemorySegment dst, long dstOffset) {
        check(n);
        if (rows < 0 || rows > ROWS) throw new IllegalArgumentException("a group holds 0 to " + ROWS + " rows, not " + rows);
        int codeBytes = block - 4;
        for (int r = rows; r < ROWS; r++) {
            for (int b = 0; b < n / QK; b++) dst.asSlice(dstOffset + (long) step * b + block * r, block).fill((byte) 0);
        }
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < n / QK; b++) {
                long from = offset + r * rowBytes + (long) srcBlock * b, to = dstOffset + (long) step * b + block * r;
                dst.set(FLOAT, to, Float.float16ToFloat(src.get(LE_SHORT, from)));
                MemorySegment.copy(src, from + 2, dst, to + 4, codeBytes);
            }
        }
    }

    @Override
    public final void dequantize(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n) {
        check(n);
        for (int b = 0; b < n / QK; b++) {
            long p = group + (long) step * b + block * slot;
            decodeBlock(src, p + 4, src.get(FLOAT, p), dst, dstOffset + b * QK);
        }
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
