package io.moe4j.kernels;

/**
 * A weight matrix of {@code rows} rows of {@code cols} elements of {@code type}, prepared by a {@link Backend}
 * ({@link WeightLoader}) from the model file: the backend decides its layout and where it lives (the CPU backend
 * interleaves rows for its decode kernels; a device backend uploads the file's blocks). Only the backend that made
 * it reads it.
 */
public interface Weight {
    GgmlType type();

    int rows();

    int cols();

    /** Bytes of the matrix in the file's layout (what one pass over it reads, whatever the backend's layout). */
    default long fileBytes() {
        return rows() * type().bytesFor(cols());
    }
}
