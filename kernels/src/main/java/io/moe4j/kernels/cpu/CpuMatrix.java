package io.moe4j.kernels.cpu;

import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.Weight;
import io.moe4j.kernels.WeightMatrix;
import io.moe4j.kernels.quant.BlockFormats;
import io.moe4j.kernels.quant.InterleavedFormat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A matrix of {@code rows} rows of {@code cols} elements each, of weight type {@code type}. Either row after row in
 * ggml's block layout, read in place from {@code data} (usually a slice of a memory-mapped model file), or, when
 * {@code interleaved}, in the type's {@link InterleavedFormat} (groups of 4 rows, a copy made by {@link #interleave}
 * for the CPU decode kernels). Which layout is a kernel detail: {@link MatMul} reads both, with the same results.
 */
public record CpuMatrix(MemorySegment data, GgmlType type, int rows, int cols, boolean interleaved) implements Weight {

    public CpuMatrix {
        if (cols % type.blockSize != 0) {
            throw new IllegalArgumentException(type + " row of " + cols + " elements is not a whole number of blocks of " + type.blockSize);
        }
        if (interleaved && BlockFormats.interleaved(type) == null) {
            throw new IllegalArgumentException(type + " has no interleaved layout on this CPU");
        }
        long need = interleaved ? groups(rows) * BlockFormats.interleaved(type).groupBytes(cols) : (long) rows * type.bytesFor(cols);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("segment of " + data.byteSize() + " bytes is too small for " + rows + "x" + cols + " " + type
                    + (interleaved ? " (interleaved)" : ""));
        }
    }

    /** A row-major matrix (the file's layout). */
    public CpuMatrix(MemorySegment data, GgmlType type, int rows, int cols) {
        this(data, type, rows, cols, false);
    }

    /** The file's matrix {@code m}, read in place. */
    public static CpuMatrix of(WeightMatrix m) {
        return new CpuMatrix(m.data(), m.type(), m.rows(), m.cols());
    }

    private static long groups(int rows) {
        return (rows + InterleavedFormat.ROWS - 1) / InterleavedFormat.ROWS;
    }

    /** Bytes of one row in the file's layout (the same whichever layout this matrix is in). */
    public long rowBytes() {
        return type.bytesFor(cols);
    }

    /** Bytes of the matrix in the file's layout. */
    public long byteSize() {
        return rows * rowBytes();
    }

    /** Bytes of one group of 4 rows, for an interleaved matrix. */
    private long groupBytes() {
        return BlockFormats.interleaved(type).groupBytes(cols);
    }

    /** For an interleaved matrix: where the group holding row {@code row} starts in {@link #data} (its slot is row % 4). */
    long groupOffset(int row) {
        return row / InterleavedFormat.ROWS * groupBytes();
    }

    /**
     * Rows {@code first .. first+count-1} as a matrix of their own (e.g. one expert of a stacked expert tensor). An
     * interleaved matrix is cut at group boundaries only: {@code first} must be a multiple of 4 (rows of the next
     * matrix that share the last group are computed but never written).
     */
    public CpuMatrix rows(int first, int count) {
        if (!interleaved) return new CpuMatrix(data.asSlice(first * rowBytes(), count * rowBytes()), type, count, cols);
        if (first % InterleavedFormat.ROWS != 0) {
            throw new IllegalArgumentException("an interleaved matrix is cut at multiples of " + InterleavedFormat.ROWS + " rows, not at " + first);
        }
        return new CpuMatrix(data.asSlice(groupOffset(first), groups(count) * groupBytes()), type, count, cols, true);
    }

    /**
     * Whether {@link #interleave} gives this matrix a layout of its own: its type has one on this CPU, it is not
     * interleaved already, and {@code sliceRows} (the row count at which {@link #rows} will cut it, e.g. the rows of
     * one expert) is a multiple of 4.
     */
    private boolean canInterleave(int sliceRows) {
        return !interleaved && sliceRows % InterleavedFormat.ROWS == 0 && BlockFormats.interleaved(type) != null;
    }

    /** {@link #interleave(int, Arena)} for a matrix that is never cut into slices. */
    public CpuMatrix interleave(Arena arena) {
        return interleave(InterleavedFormat.ROWS, arena);
    }

    /**
     * This matrix copied into its type's {@link InterleavedFormat} in memory from {@code arena} (this matrix itself
     * when {@link #canInterleave} says no), in parallel on the worker pool. The source pages of a mapped file are
     * released afterwards ({@link MemorySegment#unload}): the decode kernels never read them again.
     */
    public CpuMatrix interleave(int sliceRows, Arena arena) {
        if (!canInterleave(sliceRows)) return this;
        InterleavedFormat f = BlockFormats.interleaved(type);
        long g = f.groupBytes(cols), rb = rowBytes();
        int n = Math.toIntExact(groups(rows));
        MemorySegment dst = UnclearedMemory.allocate(n * g, arena); // every byte is written by pack
        Parallel.dynamic(n, Parallel.chunkFor(n, 16, 64), (worker, from, to) -> {
            for (int i = from; i < to; i++) {
                int r = i * InterleavedFormat.ROWS;
                f.pack(data, r * rb, rb, Math.min(InterleavedFormat.ROWS, rows - r), cols, dst, i * g);
            }
        });
        if (data.isMapped()) data.unload();
        return new CpuMatrix(dst, type, rows, cols, true);
    }
}
