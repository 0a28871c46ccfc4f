package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

/**
 * MXFP4 (OCP microscaling FP4): blocks of 32 weights, 17 bytes: one E8M0 exponent byte e, then 16 bytes of 4-bit
 * E2M1 codes, byte j holding weight j (low nibble) and weight j+16 (high nibble). ggml stores the E2M1 values
 * doubled, as the integers of {@link #KVALUES}, and halves the scale instead: weight = KVALUES[code] * 2^(e-128).
 */
final class MXFP4Format extends KernelBase {
    static final MXFP4Format INSTANCE = new MXFP4Format();

    private MXFP4Format() {
        super(io.moe4j.kernels.GgmlType.MXFP4);
    }
    static final int QK = 32, BLOCK_BYTES = 17;
    /** E2M1 code to twice its value: sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6 doubled. */
    static final byte[] KVALUES = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    private static final ByteVector TABLE = ByteVector.fromArray(B128, KVALUES, 0);

    /** ggml's GGML_E8M0_TO_FP32_HALF: 2^(e-128), a float subnormal for e of 0 and 1. */
    static float scale(int e) {
        return Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23);
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "MXFP4");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            float d = scale(src.get(ValueLayout.JAVA_BYTE, p) & 0xFF);
            int o = dstOffset + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(ValueLayout.JAVA_BYTE, p + 1 + j) & 0xFF;
                dst[o + j] = KVALUES[q & 0x0F] * d;
                dst[o + j + QK / 2] = KVALUES[q >>> 4] * d;
            }
        }
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            // All 16 code bytes at once; a byte shuffle through the 16-entry table turns codes into (doubled) values.
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            FloatVector d = FloatVector.broadcast(F256, Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23));
            ByteVector codes = ByteVector.fromMemorySegment(B128, s, p + 1, LE);
            ByteVector lo = codes.and((byte) 0x0F).selectFrom(TABLE);
            ByteVector hi = codes.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(TABLE);
            a0 = ((FloatVector) lo.convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo), a0);
            a1 = ((FloatVector) lo.convertShape(B2F, F256, 1)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
            a2 = ((FloatVector) hi.convertShape(B2F, F256, 0)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
            a3 = ((FloatVector) hi.convertShape(B2F, F256, 1)).mul(d).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    /** {@link #KVALUES} as floats: a block's 16 possible weights are these times its scale. */
    private static final FloatVector LEVELS = FloatVector.fromArray(F512,
            new float[]{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}, 0);

    /*
     * The 512-bit kernel looks weights up in a per-block table of the block's 16 possible weights, KVALUES[code] * d,
     * computed by the same float multiplication as dequantize (so the same floats): one multiply per block, one
     * permute per 16 weights, where the byte-table kernel needed a byte shuffle, a widening conversion and a multiply.
     */
    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            IntVector t = LEVELS.mul(Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23)).reinterpretAsInts();
            // The 16 code bytes widened to 16 ints: low nibbles are weights 0..15, high nibbles 16..31.
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 1, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            z0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo), z0);
            z1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 16), z1);
        }
        FloatVector c = z0.add(z1);
        FloatVector h = (FloatVector) c.reinterpretShape(F256, 0);
        h = h.add((FloatVector) c.reinterpretShape(F256, 1));
        return ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK));
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            int o = dstOffset + 16 * b;
            int e = s.get(ValueLayout.JAVA_BYTE, p) & 0xFF;
            FloatVector d = FloatVector.broadcast(F256, Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23));
            ByteVector codes = ByteVector.fromMemorySegment(B128, s, p + 1, LE);
            ByteVector lo = codes.and((byte) 0x0F).selectFrom(TABLE);
            ByteVector hi = codes.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(TABLE);
            ((FloatVector) lo.convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o);
            ((FloatVector) lo.convertShape(B2F, F256, 1)).mul(d).intoArray(dst, o + 8);
            ((FloatVector) hi.convertShape(B2F, F256, 0)).mul(d).intoArray(dst, o + q);
            ((FloatVector) hi.convertShape(B2F, F256, 1)).mul(d).intoArray(dst, o + q + 8);
        }
    }

    /**
     * llama.cpp's quantize_row_mxfp4_ref: e = floor(log2(max|x|)) - 2 + 127 (so the largest magnitude lands
     * on the E2M1 range 4..6, i.e. 8..12 doubled) and each weight takes the code of the nearest representable
     * value, the first code winning ties (so 0 is +0, never -0).
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "MXFP4");
        for (int b = 0; b < n / QK; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0;
            for (int j = 0; j < QK; j++) {
                if (amax < Math.abs(src[xo + j])) amax = Math.abs(src[xo + j]);
            }
            int e = amax > 0 ? QuantSupport.truncToInt((float) Math.floor(log2f(amax)) - 2 + 127) & 0xFF : 0;
            float d = scale(e);
            dst.set(ValueLayout.JAVA_BYTE, p, (byte) e);
            for (int j = 0; j < QK / 2; j++) {
                int q0 = bestIndex(src[xo + j], d);
                int q1 = bestIndex(src[xo + QK / 2 + j], d);
                dst.set(ValueLayout.JAVA_BYTE, p + 1 + j, (byte) (q0 | q1 << 4));
            }
        }
    }

    /**
     * C's log2f: the float nearest to log2(a). Computed in double and rounded once; what matters is that a
     * value just below a power of two whose log2 rounds up to the integer is floored the way C floors it.
     */
    private static float log2f(float a) {
        return (float) (Math.log(a) / Math.log(2.0));
    }

    private static int bestIndex(float v, float d) {
        int best = 0;
        float bestErr = Math.abs(KVALUES[0] * d - v);
        for (int i = 1; i < 16; i++) {
            float err = Math.abs(KVALUES[i] * d - v);
            if (err < bestErr) {
                best = i;
                bestErr = err;
            }
        }
        return best;
    }
}
