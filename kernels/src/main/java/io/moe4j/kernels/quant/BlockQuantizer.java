package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * Encodes floats into one ggml weight type. For Q8_0, Q4_0, MXFP4, F16 and BF16 the bytes are exactly those of
 * llama.cpp's reference quantizers ({@code quantize_row_*_ref}, what {@code llama-quantize} writes without an
 * importance matrix); Q4_K and Q6_K follow the same reference algorithms. Implementations are stateless and
 * may be used from several threads at once.
 */
public interface BlockQuantizer {

    /**
     * Encodes {@code n} floats (a multiple of the block size) from {@code src[srcOffset..]} into {@code dst}
     * starting at byte {@code dstOffset}; writes {@code type.bytesFor(n)} bytes.
     */
    void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n);
}
