package io.moe4j.tools.hf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The 16 nibble bytes of one 32-element MXFP4 block in the two layouts. Hugging Face (OpenAI's gpt-oss checkpoints)
 * packs consecutive elements: byte i holds element 2i in its low and 2i+1 in its high nibble. ggml's block_mxfp4
 * splits the block in halves: byte j holds element j in its low and element j+16 in its high nibble. The scale
 * byte (E8M0) is the same in both; ggml stores it before the 16 bytes.
 */
public final class Mxfp4Layout {
    private Mxfp4Layout() {
    }

    private static int nibble(MemorySegment hf, long off, int element) {
        int b = hf.get(ValueLayout.JAVA_BYTE, off + element / 2) & 0xFF;
        return (element & 1) == 0 ? b & 0x0F : b >>> 4;
    }

    /** HF block bytes at {@code src[srcOff..+16)} to ggml's at {@code dst[dstOff..+16)}. */
    public static void hfToGgml(MemorySegment src, long srcOff, MemorySegment dst, long dstOff) {
        for (int j = 0; j < 16; j++) {
            int lo = nibble(src, srcOff, j), hi = nibble(src, srcOff, j + 16);
            dst.set(ValueLayout.JAVA_BYTE, dstOff + j, (byte) (lo | hi << 4));
        }
    }

    /** ggml block bytes (without the scale) at {@code src[srcOff..+16)} to HF's at {@code dst[dstOff..+16)}. */
    public static void ggmlToHf(MemorySegment src, long srcOff, MemorySegment dst, long dstOff) {
        int[] e = new int[32];
        for (int j = 0; j < 16; j++) {
            int b = src.get(ValueLayout.JAVA_BYTE, srcOff + j) & 0xFF;
            e[j] = b & 0x0F;
            e[j + 16] = b >>> 4;
        }
        for (int i = 0; i < 16; i++) dst.set(ValueLayout.JAVA_BYTE, dstOff + i, (byte) (e[2 * i] | e[2 * i + 1] << 4));
    }
}
