package io.moe4j.kernels;

import java.lang.foreign.MemorySegment;

/**
 * A matrix as a model file stores it: {@code rows} rows of {@code cols} elements of {@code type}, row after row in
 * ggml's block layout, in {@code data} (usually a slice of the memory-mapped file). What a {@link WeightLoader}
 * prepares a {@link Weight} from.
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

    /** Bytes of one row. */
    public long rowBytes() {
        return type.bytesFor(cols);
    }

    /** Bytes of the matrix. */
    public long byteSize() {
        return rows * rowBytes();
    }
}
