package io.moe4j.tools;

import io.moe4j.Moe4jException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.quant.BlockFormats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Encodes floats into a ggml type and decodes them back, through the kernels' block formats (the single place
 * that knows the block layouts); F32 gets a bulk copy.
 */
public final class Codec {
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Codec() {
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

    /** Encodes {@code src[0..n)} as {@code type} into {@code dst} at {@code dstOffset}; n is a multiple of the block size. */
    public static void encode(GgmlType type, float[] src, int n, MemorySegment dst, long dstOffset) {
        if (type == GgmlType.F32) {
            MemorySegment.copy(src, 0, dst, LE_FLOAT, dstOffset, n);
            return;
        }
        try {
            BlockFormats.quantizer(type).quantize(src, 0, dst, dstOffset, n);
        } catch (UnsupportedOperationException e) {
            throw new Moe4jException("cannot encode weights as " + type + ": " + e.getMessage(), e);
        }
    }

    /** Decodes {@code n} elements of {@code type} at byte {@code offset} of {@code src} into {@code dst[dstOffset..]}. */
    public static void decode(GgmlType type, MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        if (type == GgmlType.F32) {
            MemorySegment.copy(src, LE_FLOAT, offset, dst, dstOffset, n);
            return;
        }
        try {
            BlockFormats.of(type).dequantize(src, offset, dst, dstOffset, n);
        } catch (UnsupportedOperationException e) {
            throw new Moe4jException("cannot decode weights of type " + type + ": " + e.getMessage(), e);
        }
    }
}
