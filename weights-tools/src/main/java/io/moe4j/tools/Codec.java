package io.moe4j.tools;

import io.moe4j.Moe4jException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.BlockCodec;

import java.lang.foreign.MemorySegment;

/** Encodes floats into a ggml type and decodes them back ({@link BlockCodec}), with errors the CLI reports. */
public final class Codec {
    private Codec() {
    }

    /** Whether floats can be encoded as {@code type}. */
    public static boolean canEncode(GgmlType type) {
        return BlockCodec.canEncode(type);
    }

    /** Whether {@code type} can be decoded to floats. */
    public static boolean canDecode(GgmlType type) {
        return BlockCodec.canDecode(type);
    }

    /** Encodes {@code src[0..n)} as {@code type} into {@code dst} at {@code dstOffset}; n is a multiple of the block size. */
    public static void encode(GgmlType type, float[] src, int n, MemorySegment dst, long dstOffset) {
        try {
            BlockCodec.encode(type, src, 0, n, dst, dstOffset);
        } catch (UnsupportedOperationException e) {
            throw new Moe4jException("cannot encode weights as " + type + ": " + e.getMessage(), e);
        }
    }

    /** Decodes {@code n} elements of {@code type} at byte {@code offset} of {@code src} into {@code dst[dstOffset..]}. */
    public static void decode(GgmlType type, MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        try {
            BlockCodec.decode(type, src, offset, dst, dstOffset, n);
        } catch (UnsupportedOperationException e) {
            throw new Moe4jException("cannot decode weights of type " + type + ": " + e.getMessage(), e);
        }
    }
}
