package io.moe4j.gguf;

import io.moe4j.kernels.GgmlType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One tensor of a GGUF file. {@code dims} are in ggml order: dims[0] is the contiguous (innermost) one, so a
 * matrix with dims [cols, rows] stores rows of {@code cols} elements. {@code data} is a slice of the file's
 * memory mapping: nothing is copied.
 */
public record GgufTensor(String name, long[] dims, GgmlType type, long offset, long byteSize, MemorySegment data) {

    public long elementCount() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    /** Size of dimension i, or 1 beyond the tensor's rank (as ggml treats missing dims). */
    public long dim(int i) {
        return i < dims.length ? dims[i] : 1;
    }

    public String shape() {
        return Arrays.toString(dims);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + shape();
    }
}
