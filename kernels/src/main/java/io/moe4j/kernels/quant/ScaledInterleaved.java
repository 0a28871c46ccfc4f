package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;

/**
 * The {@link BlockInterleaved} layout of the types whose blocks of 32 weights are a scale then {@code codeBytes}
 * bytes of codes (Q4_0 with an f16 scale, MXFP4 with an E8M0 exponent byte; Q8_0 is stored alike, see
 * {@link Int8Interleaved}): each block's scale as a float (converted once, at load) and its codes. The float scale is
 * what makes the interleaving pay: the kernels multiply by it straight from memory (an embedded broadcast, no
 * vector-port work), where converting the file's scale in the loop, and moving it from a general register into a
 * vector one, costs as much as the rest of a 4-bit block. Measured on Q4_0, one core, L2-resident, 2048 columns, GB/s
 * of file bytes: row-major 14, row-major with float scales 16.5, 4 rows interleaved with f16 scales 15, with float
 * scales 25; MXFP4, 2 threads streaming: interleaved with the exponent byte 22, with float scales see
 * {@link FourBitInterleaved}. The Vector API has no vector f16 conversion. Blocks grow by 2 bytes (Q4_0 18 to 20) or
 * 3 (MXFP4 17 to 20).
 */
abstract class ScaledInterleaved extends BlockInterleaved {
    /** How a type's file stores a block's scale. */
    interface FileScale {
        /** Bytes of the scale at the start of a file block. */
        int bytes();

        /** The scale at {@code src[at..]}, as a float. */
        float read(MemorySegment src, long at);
    }

    static final FileScale F16 = new FileScale() {
        public int bytes() {
            return 2;
        }

        public float read(MemorySegment src, long at) {
            return QuantSupport.f16(src, at);
        }
    };

    private final FileScale scale;

    ScaledInterleaved(String name, FileScale scale, int codeBytes) {
        super(name, QK, scale.bytes() + codeBytes, 4 + codeBytes);
        this.scale = scale;
    }

    /** The scale of the file's block at {@code src[from..]}, as a float. */
    final float fileScale(MemorySegment src, long from) {
        return scale.read(src, from);
    }

    /** Where the codes of the file's block at {@code from} start. */
    final long fileCodes(long from) {
        return from + scale.bytes();
    }
}
