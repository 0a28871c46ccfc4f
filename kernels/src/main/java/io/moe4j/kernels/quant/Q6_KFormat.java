package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.B256;
import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static io.moe4j.kernels.quant.QuantSupport.nearestInt;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Q6_K: super-blocks of 256 weights in 16 groups of 16, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits),
 * int8 scales[16], f16 d. Weight = d * scale[g] * (q - 32) with q the 6-bit value.
 *
 * <p>Each half h of 128 weights uses ql[64h..], qh[32h..] and scales[8h..]: for l in 0..31, qh[l] carries 2 bits
 * for each of the weights l, l+32, l+64, l+96 (bits 0-1, 2-3, 4-5, 6-7); ql[l] gives the low bits of l (low
 * nibble) and l+64 (high nibble), ql[l+32] those of l+32 and l+96. Weight l of the half is in group l/16.
 */
final class Q6_KFormat extends KernelBase {
    static final Q6_KFormat INSTANCE = new Q6_KFormat();

    private Q6_KFormat() {
        super(io.moe4j.kernels.GgmlType.Q6_K);
    }
    static final int QK = 256, BLOCK_BYTES = 210;
    private static final int QL = 0, QH = 128, SCALES = 192, D = 208;

    private static int u8(MemorySegment s, long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xFF;
    }

    /** The super-block's scale d. */
    static float superScale(MemorySegment s, long p) {
        return f16(s, p + D);
    }

    /** The int8 scale of group {@code g} (weights 16g..16g+15) of the super-block at {@code p}. */
    static float groupScale(MemorySegment s, long p, int g) {
        return s.get(ValueLayout.JAVA_BYTE, p + SCALES + g);
    }

    /** The signed 6-bit value (q - 32) of weight {@code i} (0..255) of the super-block at {@code p}. */
    static int q6(MemorySegment s, long p, int i) {
        return q6(u8(s, p + QL + lowByte(i)), u8(s, p + QH + highByte(i)), i);
    }

    /** Where weight i's low 4 bits lie within ql, and its high 2 bits within qh (see the class comment). */
    private static int lowByte(int i) {
        return 64 * (i >>> 7) + (i & 31) + 32 * (i >>> 5 & 1);
    }

    private static int highByte(int i) {
        return 32 * (i >>> 7) + (i & 31);
    }

    private static int q6(int lowByte, int highByte, int i) {
        int quarter = (i & 127) >>> 5; // 0..3: weights l, l+32, l+64, l+96 of the half
        int low = quarter < 2 ? lowByte & 0xF : lowByte >>> 4;
        return (low | (highByte >>> 2 * quarter & 3) << 4) - 32;
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q6_K");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            float d = f16(src, p + D);
            for (int i = 0; i < QK; i++) {
                byte sc = src.get(ValueLayout.JAVA_BYTE, p + SCALES + i / 16);
                dst[dstOffset + b * QK + i] = d * sc * q6(src, p, i);
            }
        }
    }

    /**
     * Unpacks the super-block at {@code p} into {@code qs[0..256)} as q - 32 in weight order, 32 weights per
     * operation with 256-bit byte vectors. Shifts are done on 16-bit lanes (one instruction, where a byte shift takes
     * several); bits that cross into the neighbouring byte are masked off.
     */
    static void unpack(MemorySegment s, long p, byte[] qs) {
        for (int h = 0; h < 2; h++) {
            ByteVector lowA = ByteVector.fromMemorySegment(B256, s, p + QL + 64 * h, LE);
            ByteVector lowB = ByteVector.fromMemorySegment(B256, s, p + QL + 64 * h + 32, LE);
            ByteVector high = ByteVector.fromMemorySegment(B256, s, p + QH + 32 * h, LE);
            ShortVector hs = high.reinterpretAsShorts();
            lowA.and((byte) 0x0F).or(hs.lanewise(LSHL, 4).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32)
                    .intoArray(qs, 128 * h);
            lowB.and((byte) 0x0F).or(hs.lanewise(LSHL, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32)
                    .intoArray(qs, 128 * h + 32);
            lowA.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).or(high.and((byte) 0x30))
                    .sub((byte) 32).intoArray(qs, 128 * h + 64);
            lowB.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F)
                    .or(hs.lanewise(LSHR, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32).intoArray(qs, 128 * h + 96);
        }
    }

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        byte[] qs = scratch.b;
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            unpack(s, p, qs);
            float d = f16(s, p + D);
            // Groups 2k and 2k+1 (16 weights each, one scale each) make one 32-weight round of the 4 chains.
            for (int k = 0; k < 8; k++) {
                int xo = xOffset + QK * b + 32 * k;
                FloatVector s0 = FloatVector.broadcast(F256, d * s.get(ValueLayout.JAVA_BYTE, p + SCALES + 2 * k));
                FloatVector s1 = FloatVector.broadcast(F256, d * s.get(ValueLayout.JAVA_BYTE, p + SCALES + 2 * k + 1));
                a0 = ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k).convertShape(B2F, F256, 0)).mul(s0).fma(FloatVector.fromArray(F256, x, xo), a0);
                a1 = ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 8).convertShape(B2F, F256, 0)).mul(s0).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
                a2 = ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 16).convertShape(B2F, F256, 0)).mul(s1).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
                a3 = ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 24).convertShape(B2F, F256, 0)).mul(s1).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
            }
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    /**
     * {@link #dotVector} with 512-bit registers: lanes 0-15 of z0 are lane groups 0 and 1 (16 weights, one group of
     * 16 with one scale), z1 groups 2 and 3 (the next group). The 16 scales d * sc are formed once per super-block
     * (the same float multiplication as dequantize); the codes are unpacked as in {@link #unpack}, but kept in
     * registers (the 256-bit kernel's round trip through a byte buffer, stored 32 bytes at a time and loaded 8 or 16,
     * stalls store-to-load forwarding), and the 8 steps of 32 weights are written out.
     */
    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        float[] sm = scratch.f;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SCALES, LE).convertShape(B2F, F512, 0))
                    .mul(Float.float16ToFloat(s.get(QuantSupport.LE_SHORT, p + D))).intoArray(sm, 0);
            ByteVector lowA, lowB, high, q0, q1, q2, q3;
            ShortVector hs;
            lowA = ByteVector.fromMemorySegment(B256, s, p + QL + 0, LE);
            lowB = ByteVector.fromMemorySegment(B256, s, p + QL + 32, LE);
            high = ByteVector.fromMemorySegment(B256, s, p + QH + 0, LE);
            hs = high.reinterpretAsShorts();
            q0 = lowA.and((byte) 0x0F).or(hs.lanewise(LSHL, 4).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            q1 = lowB.and((byte) 0x0F).or(hs.lanewise(LSHL, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            q2 = lowA.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).or(high.and((byte) 0x30)).sub((byte) 32);
            q3 = lowB.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F)
                    .or(hs.lanewise(LSHR, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            z0 = ((FloatVector) q0.convertShape(B2F, F512, 0)).mul(sm[0]).fma(FloatVector.fromArray(F512, x, xo + 0), z0);
            z1 = ((FloatVector) q0.convertShape(B2F, F512, 1)).mul(sm[1]).fma(FloatVector.fromArray(F512, x, xo + 16), z1);
            z0 = ((FloatVector) q1.convertShape(B2F, F512, 0)).mul(sm[2]).fma(FloatVector.fromArray(F512, x, xo + 32), z0);
            z1 = ((FloatVector) q1.convertShape(B2F, F512, 1)).mul(sm[3]).fma(FloatVector.fromArray(F512, x, xo + 48), z1);
            z0 = ((FloatVector) q2.convertShape(B2F, F512, 0)).mul(sm[4]).fma(FloatVector.fromArray(F512, x, xo + 64), z0);
            z1 = ((FloatVector) q2.convertShape(B2F, F512, 1)).mul(sm[5]).fma(FloatVector.fromArray(F512, x, xo + 80), z1);
            z0 = ((FloatVector) q3.convertShape(B2F, F512, 0)).mul(sm[6]).fma(FloatVector.fromArray(F512, x, xo + 96), z0);
            z1 = ((FloatVector) q3.convertShape(B2F, F512, 1)).mul(sm[7]).fma(FloatVector.fromArray(F512, x, xo + 112), z1);
            lowA = ByteVector.fromMemorySegment(B256, s, p + QL + 64, LE);
            lowB = ByteVector.fromMemorySegment(B256, s, p + QL + 96, LE);
            high = ByteVector.fromMemorySegment(B256, s, p + QH + 32, LE);
            hs = high.reinterpretAsShorts();
            q0 = lowA.and((byte) 0x0F).or(hs.lanewise(LSHL, 4).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            q1 = lowB.and((byte) 0x0F).or(hs.lanewise(LSHL, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            q2 = lowA.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).or(high.and((byte) 0x30)).sub((byte) 32);
            q3 = lowB.reinterpretAsShorts().lanewise(LSHR, 4).reinterpretAsBytes().and((byte) 0x0F)
                    .or(hs.lanewise(LSHR, 2).reinterpretAsBytes().and((byte) 0x30)).sub((byte) 32);
            z0 = ((FloatVector) q0.convertShape(B2F, F512, 0)).mul(sm[8]).fma(FloatVector.fromArray(F512, x, xo + 128), z0);
            z1 = ((FloatVector) q0.convertShape(B2F, F512, 1)).mul(sm[9]).fma(FloatVector.fromArray(F512, x, xo + 144), z1);
            z0 = ((FloatVector) q1.convertShape(B2F, F512, 0)).mul(sm[10]).fma(FloatVector.fromArray(F512, x, xo + 160), z0);
            z1 = ((FloatVector) q1.convertShape(B2F, F512, 1)).mul(sm[11]).fma(FloatVector.fromArray(F512, x, xo + 176), z1);
            z0 = ((FloatVector) q2.convertShape(B2F, F512, 0)).mul(sm[12]).fma(FloatVector.fromArray(F512, x, xo + 192), z0);
            z1 = ((FloatVector) q2.convertShape(B2F, F512, 1)).mul(sm[13]).fma(FloatVector.fromArray(F512, x, xo + 208), z1);
            z0 = ((FloatVector) q3.convertShape(B2F, F512, 0)).mul(sm[14]).fma(FloatVector.fromArray(F512, x, xo + 224), z0);
            z1 = ((FloatVector) q3.convertShape(B2F, F512, 1)).mul(sm[15]).fma(FloatVector.fromArray(F512, x, xo + 240), z1);
        }
        FloatVector c = z0.add(z1);
        FloatVector h = (FloatVector) c.reinterpretShape(F256, 0);
        h = h.add((FloatVector) c.reinterpretShape(F256, 1));
        return ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
    }

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK));
        byte[] qs = scratch.b;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            unpack(s, p, qs);
            float d = f16(s, p + D);
            for (int k = 0; k < 8; k++) {
                int o = dstOffset + 128 * b + 16 * k;
                FloatVector s0 = FloatVector.broadcast(F256, d * s.get(ValueLayout.JAVA_BYTE, p + SCALES + 2 * k));
                FloatVector s1 = FloatVector.broadcast(F256, d * s.get(ValueLayout.JAVA_BYTE, p + SCALES + 2 * k + 1));
                ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k).convertShape(B2F, F256, 0)).mul(s0).intoArray(dst, o);
                ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 8).convertShape(B2F, F256, 0)).mul(s0).intoArray(dst, o + 8);
                ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 16).convertShape(B2F, F256, 0)).mul(s1).intoArray(dst, o + q);
                ((FloatVector) ByteVector.fromArray(B64, qs, 32 * k + 24).convertShape(B2F, F256, 0)).mul(s1).intoArray(dst, o + q + 8);
            }
        }
    }

    /**
     * llama.cpp's quantize_row_q6_K_ref: each group of 16 gets a symmetric scale from make_qx_quants (levels
     * -32..31, weighted by x^2), the 16 scales are quantized to int8 against d = max-magnitude scale / -128, and
     * the weights re-quantized with the stored scales.
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q6_K");
        int[] levels = new int[QK];
        float[] scales = new float[16];
        for (int b = 0; b < n / QK; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            float maxScale = 0, maxAbsScale = 0;
            for (int g = 0; g < 16; g++) {
                scales[g] = makeQxQuants(16, 32, src, xo + 16 * g, levels, 16 * g);
                if (Math.abs(scales[g]) > maxAbsScale) {
                    maxAbsScale = Math.abs(scales[g]);
                    maxScale = scales[g];
                }
            }
            if (maxAbsScale < 1e-15f) { // all (near) zero: an all-zero block
                dst.asSlice(p, BLOCK_BYTES).fill((byte) 0);
                continue;
            }
            float iscale = -128f / maxScale;
            QuantSupport.putF16(dst, p + D, 1 / iscale);
            for (int g = 0; g < 16; g++) {
                dst.set(ValueLayout.JAVA_BYTE, p + SCALES + g, (byte) Math.min(127, nearestInt(iscale * scales[g])));
            }
            float d = f16(dst, p + D);
            for (int g = 0; g < 16; g++) {
                float dg = d * dst.get(ValueLayout.JAVA_BYTE, p + SCALES + g);
                if (dg == 0) continue; // keeps the levels of the fit, as C does
                for (int ii = 0; ii < 16; ii++) {
                    int l = nearestInt(src[xo + 16 * g + ii] / dg);
                    levels[16 * g + ii] = Math.max(-32, Math.min(31, l)) + 32;
                }
            }
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int j = 128 * h + l;
                    int q1 = levels[j], q2 = levels[j + 32], q3 = levels[j + 64], q4 = levels[j + 96];
                    dst.set(ValueLayout.JAVA_BYTE, p + QL + 64 * h + l, (byte) ((q1 & 0xF) | (q3 & 0xF) << 4));
                    dst.set(ValueLayout.JAVA_BYTE, p + QL + 64 * h + 32 + l, (byte) ((q2 & 0xF) | (q4 & 0xF) << 4));
                    dst.set(ValueLayout.JAVA_BYTE, p + QH + 32 * h + l,
                            (byte) ((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6));
                }
            }
        }
    }

    /**
     * ggml's make_qx_quants with rmse_type 1 and no importance weights: symmetric levels -nmax..nmax-1 against
     * the value of largest magnitude, then 18 nearby scales (nmax +- 0.1..0.9) are tried and the one with the
     * best weighted (x^2) least-squares fit kept. Writes levels + nmax into L[lOff..], returns the scale.
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xo, int[] L, int lOff) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < 1e-15f) { // GROUP_MAX_EPS
            for (int i = 0; i < n; i++) L[lOff + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
            L[lOff + i] = l + nmax;
            float w = v * v;
            sumLX += w * v * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < n; i++) {
                float v = x[xo + i];
                int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
                float w = v * v;
                sumLX += w * v * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) {
                    int l = nearestInt(iscale * x[xo + i]);
                    L[lOff + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
                }
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }
}
