package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.VECTOR;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static jdk.incubator.vector.VectorOperators.B2F;

/**
 * Q4_0: blocks of 32 weights, 18 bytes: f16 scale d, then 16 bytes of nibbles. Byte j holds weight j in its low
 * nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d.
 */
final class Q4_0Format implements BlockFormat, BlockQuantizer {
    static final Q4_0Format INSTANCE = new Q4_0Format();
    static final int QK = 32, BLOCK_BYTES = 18;

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_0");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            float d = f16(src, p);
            int o = dstOffset + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(ValueLayout.JAVA_BYTE, p + 2 + j) & 0xFF;
                dst[o + j] = ((q & 0x0F) - 8) * d;
                dst[o + j + QK / 2] = ((q >>> 4) - 8) * d;
            }
        }
    }

    @Override
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_0");
        return VECTOR ? dotVector(src, offset, x, xOffset, n) : dotScalar(src, offset, x, xOffset, n);
    }

    float dotScalar(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            int xo = xOffset + b * QK;
            float bs = 0;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(ValueLayout.JAVA_BYTE, p + 2 + j) & 0xFF;
                bs += ((q & 0x0F) - 8) * x[xo + j] + ((q >>> 4) - 8) * x[xo + j + QK / 2];
            }
            s += bs * f16(src, p);
        }
        return s;
    }

    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F256);
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES + 2;
            int xo = xOffset + b * QK;
            // Bytes 0..7 carry weights 0..7 (low) and 16..23 (high); bytes 8..15 carry 8..15 and 24..31.
            ByteVector v0 = ByteVector.fromMemorySegment(B64, src, p, LE);
            ByteVector v1 = ByteVector.fromMemorySegment(B64, src, p + 8, LE);
            FloatVector s0 = lo(v0).mul(FloatVector.fromArray(F256, x, xo));
            FloatVector s1 = lo(v1).mul(FloatVector.fromArray(F256, x, xo + 8));
            s0 = hi(v0).fma(FloatVector.fromArray(F256, x, xo + 16), s0);
            s1 = hi(v1).fma(FloatVector.fromArray(F256, x, xo + 24), s1);
            acc = s0.add(s1).fma(FloatVector.broadcast(F256, f16(src, p - 2)), acc);
        }
        return QuantSupport.sumLanes(acc);
    }

    private static FloatVector lo(ByteVector v) {
        return (FloatVector) v.and((byte) 0x0F).sub((byte) 8).convertShape(B2F, F256, 0);
    }

    private static FloatVector hi(ByteVector v) {
        return (FloatVector) QuantSupport.highNibbles(v).sub((byte) 8).convertShape(B2F, F256, 0);
    }

    /**
     * llama.cpp's quantize_row_q4_0_ref: d = m / -8 where m is the value of largest magnitude (so m itself maps
     * to nibble 0, i.e. -8), nibble = min(15, (int)(x * (1/d) + 8.5)) with C's truncating conversion.
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_0");
        for (int b = 0; b < n / QK; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) {
                float v = src[xo + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8; // -0.0 for an all-zero block, as in C
            float id = d != 0 ? 1.0f / d : 0.0f;
            QuantSupport.putF16(dst, p, d);
            for (int j = 0; j < QK / 2; j++) {
                int q0 = nibble(src[xo + j] * id);
                int q1 = nibble(src[xo + QK / 2 + j] * id);
                dst.set(ValueLayout.JAVA_BYTE, p + 2 + j, (byte) (q0 | q1 << 4));
            }
        }
    }

    private static int nibble(float scaled) {
        // C: MIN(15, (int8_t)(scaled + 8.5f)) stored in a uint8_t; the sum is in [0, 17) for finite input.
        byte t = (byte) QuantSupport.truncToInt(scaled + 8.5f);
        return Math.min(15, t) & 0xFF;
    }
}
