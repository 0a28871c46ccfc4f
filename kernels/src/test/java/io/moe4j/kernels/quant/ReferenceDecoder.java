package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;

/**
 * Straightforward decoders written from the block layouts (ggml-common.h), independent of the production code:
 * element by element, from a plain byte array, with the E2M1 and half values worked out from their bit fields
 * rather than taken from tables. Products are formed in the order ggml's dequantize_row_* forms them, so the
 * results must equal the production decode bit for bit.
 */
final class ReferenceDecoder {
    private ReferenceDecoder() {
    }

    static int u8(byte[] b, int i) {
        return b[i] & 0xFF;
    }

    static float half(byte[] b, int i) {
        int h = u8(b, i) | u8(b, i + 1) << 8;
        int sign = h >>> 15, exp = h >>> 10 & 31, man = h & 1023;
        float mag;
        if (exp == 0) mag = man * 0x1p-24f; // subnormal: man * 2^-14 / 1024
        else if (exp == 31) mag = man == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        else mag = (1 + man / 1024f) * (float) Math.pow(2, exp - 15);
        return sign == 1 ? -mag : mag;
    }

    /** Twice the value of an E2M1 code: sign, 2 exponent bits, 1 mantissa bit (exponent 0: subnormal). */
    static int e2m1Doubled(int code) {
        int e = code >>> 1 & 3, m = code & 1;
        double v = e == 0 ? m * 0.5 : Math.pow(2, e - 1) * (1 + m / 2.0);
        int doubled = (int) (2 * v);
        return (code & 8) != 0 ? -doubled : doubled;
    }

    /** Decodes all of {@code b} (whole blocks) as {@code type}. */
    static float[] decode(GgmlType type, byte[] b) {
        int nBlocks = b.length / type.blockBytes, qk = type.blockSize;
        float[] y = new float[nBlocks * qk];
        for (int blk = 0; blk < nBlocks; blk++) {
            int p = blk * type.blockBytes;
            for (int i = 0; i < qk; i++) y[blk * qk + i] = element(type, b, p, i);
        }
        return y;
    }

    private static float element(GgmlType type, byte[] b, int p, int i) {
        switch (type) {
            case F32:
                return Float.intBitsToFloat(u8(b, p) | u8(b, p + 1) << 8 | u8(b, p + 2) << 16 | u8(b, p + 3) << 24);
            case F16:
                return half(b, p);
            case BF16:
                return Float.intBitsToFloat((u8(b, p) | u8(b, p + 1) << 8) << 16);
            case Q8_0:
                return b[p + 2 + i] * half(b, p);
            case Q4_0: {
                int q = u8(b, p + 2 + i % 16);
                int nib = i < 16 ? q & 15 : q >> 4;
                return (nib - 8) * half(b, p);
            }
            case MXFP4: {
                int q = u8(b, p + 1 + i % 16);
                int code = i < 16 ? q & 15 : q >> 4;
                int e = u8(b, p);
                return Math.scalb((float) e2m1Doubled(code), e - 128); // the doubled value times 2^(e-1) / 2
            }
            case Q4_K: {
                int j = i / 32;                       // sub-block
                int s = p + 4;                        // 12 scale bytes
                int sc, m;
                if (j < 4) {
                    sc = u8(b, s + j) & 63;
                    m = u8(b, s + j + 4) & 63;
                } else {
                    sc = (u8(b, s + j + 4) & 15) | (u8(b, s + j - 4) >> 6) << 4;
                    m = (u8(b, s + j + 4) >> 4) | (u8(b, s + j) >> 6) << 4;
                }
                int q = u8(b, p + 16 + 32 * (j / 2) + i % 32);
                int nib = j % 2 == 0 ? q & 15 : q >> 4;
                float d1 = half(b, p) * sc, m1 = half(b, p + 2) * m;
                return d1 * nib - m1;
            }
            case Q6_K: {
                // as ggml's loop: for each half n and l in 0..31 it forms q1..q4 for weights l, l+32, l+64, l+96
                int n = i / 128, l = i % 32, which = i % 128 / 32;
                int ql = p + 64 * n, qh = p + 128 + 32 * n;
                int q = switch (which) {
                    case 0 -> (u8(b, ql + l) & 15) | (u8(b, qh + l) & 3) << 4;
                    case 1 -> (u8(b, ql + l + 32) & 15) | (u8(b, qh + l) >> 2 & 3) << 4;
                    case 2 -> (u8(b, ql + l) >> 4) | (u8(b, qh + l) >> 4 & 3) << 4;
                    default -> (u8(b, ql + l + 32) >> 4) | (u8(b, qh + l) >> 6 & 3) << 4;
                };
                int scale = b[p + 192 + 8 * n + l / 16 + 2 * which];
                return half(b, p + 208) * scale * (q - 32);
            }
            default:
                throw new AssertionError(type);
        }
    }
}
