package io.moe4j.tools;

import io.moe4j.kernels.GgmlType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * One tensor of a file to be written: its GGUF name, ggml type, ggml dims (dims[0] contiguous) and where its data
 * comes from.
 */
public record TensorPlan(String name, GgmlType type, long[] dims, Source source) {

    /** Where a tensor's data comes from. */
    public sealed interface Source permits Bytes, Rows, RawRows {
    }

    /**
     * Data already encoded in the tensor's type, written as is: one segment (e.g. a slice of another file's mapping)
     * or several written one after another (e.g. the same dense FFN once per expert).
     */
    public record Bytes(List<MemorySegment> parts) implements Source {
        public Bytes(MemorySegment data) {
            this(List.of(data));
        }

        public long byteSize() {
            long n = 0;
            for (MemorySegment s : parts) n += s.byteSize();
            return n;
        }
    }

    /**
     * Data produced as float rows of {@code dims[0]} elements and encoded by the writer. {@link #fill} may be called
     * from several threads at once for different row ranges, in any order; it must be deterministic.
     */
    @FunctionalInterface
    public non-sealed interface Rows extends Source {
        /** Writes rows {@code [firstRow, firstRow + nRows)} (each {@code dims[0]} floats) to {@code dst[0..]}. */
        void fill(long firstRow, int nRows, float[] dst);
    }

    /**
     * Data produced already encoded in the tensor's type, row by row (e.g. rows gathered or repacked from another
     * layout). Same contract as {@link Rows}: deterministic, callable concurrently for different ranges.
     */
    @FunctionalInterface
    public non-sealed interface RawRows extends Source {
        /** Writes the encoded rows {@code [firstRow, firstRow + nRows)} to {@code dst} from byte 0. */
        void fill(long firstRow, int nRows, MemorySegment dst);
    }

    public TensorPlan {
        dims = dims.clone();
    }

    public long elements() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    public long rowCount() {
        return elements() / dims[0];
    }

    public long byteSize() {
        return type.bytesFor(elements());
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(dims);
    }
}
