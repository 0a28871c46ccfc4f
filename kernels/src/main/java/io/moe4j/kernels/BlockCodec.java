package io.moe4j.kernels;

import io.moe4j.kernels.quant.BlockFormats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Floats encoded in a ggml type and decoded back, by the kernels' block formats (the single place that knows the
 * block layouts), for tools that write model files. Types without a format throw {@link UnsupportedOperationException}.
 */
public final class BlockCodec {
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private BlockCodec() {
    }

    /** Whether floats can be encoded as {@code type}. */
    public static boolean canEncode(GgmlType type) {
        try {
            BlockFormats.quantizer(type);
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }

    /** Whether {@code type} can be decoded to floats. */
    public static boolean canDecode(GgmlType type) {
        try {
            BlockFormats.of(type);
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }

    /** Encodes {@code src[srcOffset..+n)} as {@code type} into {@code dst} at {@code dstOffset}; n is a multiple of the block size. */
    public static void encode(GgmlType type, float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        if (type == GgmlType.F32) {
            MemorySegment.copy(src, srcOffset, dst, LE_FLOAT, dstOffset, n);
            return;
        }
        BlockFormats.quantizer(type).quantize(src, srcOffset, dst, dstOffset, n);
    }

    /** Decodes {@code n} elements of {@code type} at byte {@code offset} of {@code src} into {@code dst[dstOffset..]}. */
    public static void decode(GgmlType type, MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        if (type == GgmlType.F32) {
            MemorySegment.copy(src, LE_FLOAT, offset, dst, dstOffset, n);
            return;
        }
        BlockFormats.of(type).dequantize(src, offset, dst, dstOffset, n);
    }
}
