package io.moe4j.tools.hf;

import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.tools.TensorPlan;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The rows of one GGUF tensor (ggml order: {@code cols} contiguous elements per row) as found somewhere in a
 * checkpoint: natively encoded in {@link #nativeType()} (F32, F16, BF16 or MXFP4), readable as floats.
 */
public interface RowSource {
    ValueLayout.OfDouble LE_F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The ggml type the rows are stored in. */
    GgmlType nativeType();

    long rows();

    int cols();

    /** Row {@code r} as floats into {@code dst[off..]}. */
    void read(long r, float[] dst, int off);

    /** Row {@code r} encoded in {@link #nativeType()} into {@code dst} at {@code off}. */
    void raw(long r, MemorySegment dst, long off);

    /** The whole tensor's native bytes in ggml order as consecutive slices of the files, or null when gathered. */
    default List<MemorySegment> slices() {
        return null;
    }

    /** The data source writing this tensor as {@code target}. */
    default TensorPlan.Source plan(GgmlType target) {
        int cols = cols();
        if (target == nativeType()) {
            List<MemorySegment> s = slices();
            if (s != null) return new TensorPlan.Bytes(s);
            long rowBytes = target.bytesFor(cols);
            return (TensorPlan.RawRows) (first, n, dst) -> {
                for (int i = 0; i < n; i++) raw(first + i, dst, i * rowBytes);
            };
        }
        return (TensorPlan.Rows) (first, n, dst) -> {
            for (int i = 0; i < n; i++) read(first + i, dst, i * cols);
        };
    }

    /** Decodes {@code n} elements of {@code dtype} from {@code src} at byte {@code off}, {@code stride} elements apart. */
    static void decode(DType dtype, MemorySegment src, long off, long stride, float[] dst, int dstOff, int n) {
        GgmlType g = dtype.ggml();
        if (stride == 1 && g != null) {
            Codec.decode(g, src, off, dst, dstOff, n);
            return;
        }
        long step = stride * dtype.bytes;
        switch (dtype) {
            case F32 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = src.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off + i * step); }
            case F16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Float.float16ToFloat(src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off + i * step)); }
            case BF16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Float.intBitsToFloat(src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off + i * step) << 16); }
            case F64 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = (float) src.get(LE_F64, off + i * step); }
            default -> throw new ModelFormatException("tensors of dtype " + dtype + " cannot be read as weights");
        }
    }
}
