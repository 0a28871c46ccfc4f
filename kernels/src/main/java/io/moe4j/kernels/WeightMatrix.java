package io.moe4j.kernels;

import java.lang.foreign.MemorySegment;

/**
 * A matrix of {@code rows} rows of {@code cols} elements each, stored row after row in ggml's block layout for
 * {@code type}, read in place from {@code data} (usually a slice of a memory-mapped model file).
 */
public record WeightMatrix(MemorySegment data, GgmlType type, int rows, int cols) {

    public WeightMatrix {
        if (cols % type.blockSize != 0) {
            throw new IllegalArgumentException(type + " row of " + cols + " elements is not a whole number of blocks of " + type.blockSize);
        }
        if (data.byteSize() < (long) rows * type.bytesFor(cols)) {
            throw new IllegalArgumentException("segment of " + data.byteSize() + " bytes is too small for " + rows + "x" + cols + " " + type);
        }
    }

    public long rowBytes() {
        return type.bytesFor(cols);
    }

    public long byteSize() {
        return rows * rowBytes();
    }

    /** Rows {@code first .. first+count-1} as a matrix of their own (e.g. one expert of a stacked expert tensor). */
    public WeightMatrix rows(int first, int count) {
        return new WeightMatrix(data.asSlice(first * rowBytes(), count * rowBytes()), type, count, cols);
    }
}
