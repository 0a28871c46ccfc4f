package io.moe4j.kernels;

/** Prepares the weights of one model file for its {@link Backend} ({@link Backend#loader}). */
public interface WeightLoader {
    /**
     * A matrix that is multiplied, prepared in the backend's layout. {@code sliceRows}: the rows of one network of a
     * stack (an expert), at whose multiples the backend will cut it; the matrix's own rows when it is not a stack.
     */
    Weight matrix(WeightMatrix m, int sliceRows);

    /** A matrix of which only single rows are read ({@link Backend#embed}): kept in the file's layout. */
    Weight table(WeightMatrix m);

    /** The first {@code m.cols()} × {@code m.rows()} elements decoded to floats (norms, biases, sinks). */
    Tensor vector(WeightMatrix m);

    /** After the last weight (the CPU backend writes its layout cache here): what the load took. */
    LoadReport finish();
}
