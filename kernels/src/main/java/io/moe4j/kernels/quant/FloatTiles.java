package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dot products of decoded weight rows with token rows, 4 rows × 4 tokens (or 4 rows × 1 token) at a time: the inner
 * kernel of the matrix × matrix path, where a block of weight rows is decoded once into a float panel and then
 * multiplied by every token of the batch, so each weight is read from memory once per batch.
 *
 * <p>Weights and tokens are in lane-group order ({@link BlockFormat#dequantizeLanes}; {@link #toLaneOrder} for the
 * tokens): the first half of a row holds lane groups 0 and 1 of every 32 elements, the second half groups 2 and 3.
 * A tile runs over each half with one accumulator per (row, token) pair, 16 in all: a 512-bit one holding both
 * groups (where the hardware has 512-bit vectors), or two 256-bit passes, one per group. The groups are then combined
 * in the order of {@link BlockFormat}, so a pair's result is the same float {@link BlockFormat#dot} computes for it,
 * whatever tile, batch or vector width it was computed with.
 */
public final class FloatTiles {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256, F16 = FloatVector.SPECIES_512;

    private FloatTiles() {
    }

    /** Scratch floats a tile needs for its partial sums ({@code lanes} argument). */
    public static final int LANES = 2 * 16 * 16;

    /**
     * 4 weight rows × 4 tokens: {@code out[o + r * oRow + t * oTok] = dot(w row r, x row t)} over {@code n} columns,
     * for r, t in 0..3; weight row r starts at {@code w[wOff + r * wStride]}, token t at {@code x[xOff + t * xStride]},
     * both in lane-group order. Only the first {@code rows} rows are stored (the others may hold anything).
     */
    public static void tile4x4(float[] w, int wOff, int wStride, float[] x, int xOff, int xStride, int n,
                               float[] out, int o, int oRow, int oTok, int rows, float[] lanes) {
        int h = (n & ~31) / 2, steps = n / 32;
        if (QuantSupport.WIDE) {
            tile4x4Wide(w, wOff, wStride, x, xOff, xStride, steps, lanes, 0);
            tile4x4Wide(w, wOff + h, wStride, x, xOff + h, xStride, steps, lanes, 256);
        } else if (QuantSupport.VECTOR) {
            for (int g = 0; g < 4; g++) {
                int d = (g >> 1) * h + 8 * (g & 1);
                tile4x4Pass(w, wOff + d, wStride, x, xOff + d, xStride, steps, lanes, (g >> 1) * 256 + 8 * (g & 1));
            }
        } else {
            passScalar(w, wOff, wStride, x, xOff, xStride, h, steps, 4, 4, lanes);
        }
        finish(w, wOff, wStride, x, xOff, xStride, n, out, o, oRow, oTok, rows, 4, 4, lanes);
    }

    /** 4 weight rows × 1 token: {@code out[o + r * oRow] = dot(w row r, x)}; only the first {@code rows} are stored. */
    public static void tile4x1(float[] w, int wOff, int wStride, float[] x, int xOff, int n, float[] out, int o, int oRow,
                               int rows, float[] lanes) {
        int h = (n & ~31) / 2, steps = n / 32;
        if (QuantSupport.WIDE) {
            tile4x1Wide(w, wOff, wStride, x, xOff, 0, steps, lanes, 0);
            tile4x1Wide(w, wOff + h, wStride, x, xOff + h, 0, steps, lanes, 64);
        } else if (QuantSupport.VECTOR) {
            for (int g = 0; g < 4; g++) {
                int d = (g >> 1) * h + 8 * (g & 1);
                tile4x1Pass(w, wOff + d, wStride, x, xOff + d, 0, steps, lanes, (g >> 1) * 64 + 8 * (g & 1));
            }
        } else {
            passScalar(w, wOff, wStride, x, xOff, 0, h, steps, 4, 1, lanes);
        }
        finish(w, wOff, wStride, x, xOff, 0, n, out, o, oRow, 0, rows, 4, 1, lanes);
    }

    private static void tile4x4Pass(float[] w, int w0, int wStride, float[] x, int x0, int xStride, int steps, float[] l, int lOff) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c10 = z, c20 = z, c30 = z, c01 = z, c11 = z, c21 = z, c31 = z, c02 = z, c12 = z, c22 = z, c32 = z, c03 = z, c13 = z, c23 = z, c33 = z;
        for (int k = 0, end = 16 * steps; k < end; k += 16) {
            FloatVector a0 = FloatVector.fromArray(F, w, w0 + k);
            FloatVector a1 = FloatVector.fromArray(F, w, w0 + 1 * wStride + k);
            FloatVector a2 = FloatVector.fromArray(F, w, w0 + 2 * wStride + k);
            FloatVector a3 = FloatVector.fromArray(F, w, w0 + 3 * wStride + k);
            FloatVector b0 = FloatVector.fromArray(F, x, x0 + k);
            c00 = a0.fma(b0, c00);
            c10 = a1.fma(b0, c10);
            c20 = a2.fma(b0, c20);
            c30 = a3.fma(b0, c30);
            FloatVector b1 = FloatVector.fromArray(F, x, x0 + 1 * xStride + k);
            c01 = a0.fma(b1, c01);
            c11 = a1.fma(b1, c11);
            c21 = a2.fma(b1, c21);
            c31 = a3.fma(b1, c31);
            FloatVector b2 = FloatVector.fromArray(F, x, x0 + 2 * xStride + k);
            c02 = a0.fma(b2, c02);
            c12 = a1.fma(b2, c12);
            c22 = a2.fma(b2, c22);
            c32 = a3.fma(b2, c32);
            FloatVector b3 = FloatVector.fromArray(F, x, x0 + 3 * xStride + k);
            c03 = a0.fma(b3, c03);
            c13 = a1.fma(b3, c13);
            c23 = a2.fma(b3, c23);
            c33 = a3.fma(b3, c33);
        }
        c00.intoArray(l, lOff + 0);
        c10.intoArray(l, lOff + 16);
        c20.intoArray(l, lOff + 32);
        c30.intoArray(l, lOff + 48);
        c01.intoArray(l, lOff + 64);
        c11.intoArray(l, lOff + 80);
        c21.intoArray(l, lOff + 96);
        c31.intoArray(l, lOff + 112);
        c02.intoArray(l, lOff + 128);
        c12.intoArray(l, lOff + 144);
        c22.intoArray(l, lOff + 160);
        c32.intoArray(l, lOff + 176);
        c03.intoArray(l, lOff + 192);
        c13.intoArray(l, lOff + 208);
        c23.intoArray(l, lOff + 224);
        c33.intoArray(l, lOff + 240);
    }

    private static void tile4x1Pass(float[] w, int w0, int wStride, float[] x, int x0, int xStride, int steps, float[] l, int lOff) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c10 = z, c20 = z, c30 = z;
        for (int k = 0, end = 16 * steps; k < end; k += 16) {
            FloatVector a0 = FloatVector.fromArray(F, w, w0 + k);
            FloatVector a1 = FloatVector.fromArray(F, w, w0 + 1 * wStride + k);
            FloatVector a2 = FloatVector.fromArray(F, w, w0 + 2 * wStride + k);
            FloatVector a3 = FloatVector.fromArray(F, w, w0 + 3 * wStride + k);
            FloatVector b0 = FloatVector.fromArray(F, x, x0 + k);
            c00 = a0.fma(b0, c00);
            c10 = a1.fma(b0, c10);
            c20 = a2.fma(b0, c20);
            c30 = a3.fma(b0, c30);
        }
        c00.intoArray(l, lOff + 0);
        c10.intoArray(l, lOff + 16);
        c20.intoArray(l, lOff + 32);
        c30.intoArray(l, lOff + 48);
    }

    private static void tile4x4Wide(float[] w, int w0, int wStride, float[] x, int x0, int xStride, int steps, float[] l, int lOff) {
        FloatVector z = FloatVector.zero(F16);
        FloatVector c00 = z, c10 = z, c20 = z, c30 = z, c01 = z, c11 = z, c21 = z, c31 = z, c02 = z, c12 = z, c22 = z, c32 = z, c03 = z, c13 = z, c23 = z, c33 = z;
        for (int k = 0, end = 16 * steps; k < end; k += 16) {
            FloatVector a0 = FloatVector.fromArray(F16, w, w0 + k);
            FloatVector a1 = FloatVector.fromArray(F16, w, w0 + 1 * wStride + k);
            FloatVector a2 = FloatVector.fromArray(F16, w, w0 + 2 * wStride + k);
            FloatVector a3 = FloatVector.fromArray(F16, w, w0 + 3 * wStride + k);
            FloatVector b0 = FloatVector.fromArray(F16, x, x0 + k);
            c00 = a0.fma(b0, c00);
            c10 = a1.fma(b0, c10);
            c20 = a2.fma(b0, c20);
            c30 = a3.fma(b0, c30);
            FloatVector b1 = FloatVector.fromArray(F16, x, x0 + 1 * xStride + k);
            c01 = a0.fma(b1, c01);
            c11 = a1.fma(b1, c11);
            c21 = a2.fma(b1, c21);
            c31 = a3.fma(b1, c31);
            FloatVector b2 = FloatVector.fromArray(F16, x, x0 + 2 * xStride + k);
            c02 = a0.fma(b2, c02);
            c12 = a1.fma(b2, c12);
            c22 = a2.fma(b2, c22);
            c32 = a3.fma(b2, c32);
            FloatVector b3 = FloatVector.fromArray(F16, x, x0 + 3 * xStride + k);
            c03 = a0.fma(b3, c03);
            c13 = a1.fma(b3, c13);
            c23 = a2.fma(b3, c23);
            c33 = a3.fma(b3, c33);
        }
        c00.intoArray(l, lOff + 0);
        c10.intoArray(l, lOff + 16);
        c20.intoArray(l, lOff + 32);
        c30.intoArray(l, lOff + 48);
        c01.intoArray(l, lOff + 64);
        c11.intoArray(l, lOff + 80);
        c21.intoArray(l, lOff + 96);
        c31.intoArray(l, lOff + 112);
        c02.intoArray(l, lOff + 128);
        c12.intoArray(l, lOff + 144);
        c22.intoArray(l, lOff + 160);
        c32.intoArray(l, lOff + 176);
        c03.intoArray(l, lOff + 192);
        c13.intoArray(l, lOff + 208);
        c23.intoArray(l, lOff + 224);
        c33.intoArray(l, lOff + 240);
    }

    private static void tile4x1Wide(float[] w, int w0, int wStride, float[] x, int x0, int xStride, int steps, float[] l, int lOff) {
        FloatVector z = FloatVector.zero(F16);
        FloatVector c00 = z, c10 = z, c20 = z, c30 = z;
        for (int k = 0, end = 16 * steps; k < end; k += 16) {
            FloatVector a0 = FloatVector.fromArray(F16, w, w0 + k);
            FloatVector a1 = FloatVector.fromArray(F16, w, w0 + 1 * wStride + k);
            FloatVector a2 = FloatVector.fromArray(F16, w, w0 + 2 * wStride + k);
            FloatVector a3 = FloatVector.fromArray(F16, w, w0 + 3 * wStride + k);
            FloatVector b0 = FloatVector.fromArray(F16, x, x0 + k);
            c00 = a0.fma(b0, c00);
            c10 = a1.fma(b0, c10);
            c20 = a2.fma(b0, c20);
            c30 = a3.fma(b0, c30);
        }
        c00.intoArray(l, lOff + 0);
        c10.intoArray(l, lOff + 16);
        c20.intoArray(l, lOff + 32);
        c30.intoArray(l, lOff + 48);
    }

    /** The passes in scalar code: pair p's half P in lanes[(P * R * T + p) * 16 ..], groups 0/2 then 1/3. */
    private static void passScalar(float[] w, int wOff, int wStride, float[] x, int xOff, int xStride, int h, int steps,
                                   int R, int T, float[] l) {
        for (int half = 0; half < 2; half++) {
            for (int t = 0; t < T; t++) {
                for (int r = 0; r < R; r++) {
                    int base = (half * R * T + t * R + r) * 16;
                    for (int j = 0; j < 16; j++) l[base + j] = 0f;
                    for (int k = 0; k < 16 * steps; k++) {
                        l[base + (k & 15)] = Math.fma(w[wOff + r * wStride + half * h + k], x[xOff + t * xStride + half * h + k], l[base + (k & 15)]);
                    }
                }
            }
        }
    }

    /** Lane i to lane i ^ 1, i ^ 2, i ^ 4: the steps of the pairwise lane sum. */
    private static final VectorShuffle<Float> SWAP1 = VectorShuffle.fromValues(F, 1, 0, 3, 2, 5, 4, 7, 6),
            SWAP2 = VectorShuffle.fromValues(F, 2, 3, 0, 1, 6, 7, 4, 5), SWAP4 = VectorShuffle.fromValues(F, 4, 5, 6, 7, 0, 1, 2, 3);

    /**
     * Combines the 4 groups of every pair as (g0 + g2) + (g1 + g3), sums the lanes, adds the tail, stores. The lane
     * sum ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) is done as three vector steps, each adding lane i ^ 2^k to lane i, so
     * lane 0 ends up with exactly that sum (float addition is commutative).
     */
    private static void finish(float[] w, int wOff, int wStride, float[] x, int xOff, int xStride, int n,
                               float[] out, int o, int oRow, int oTok, int rows, int R, int T, float[] l) {
        int n32 = n & ~31, second = 16 * R * T;
        for (int t = 0; t < T; t++) {
            for (int r = 0; r < rows; r++) {
                int p = (t * R + r) * 16; // groups 0 and 1 at p, p + 8; groups 2 and 3 at p + second, p + second + 8
                float s;
                if (QuantSupport.VECTOR) {
                    FloatVector c = FloatVector.fromArray(F, l, p).add(FloatVector.fromArray(F, l, p + second))
                            .add(FloatVector.fromArray(F, l, p + 8).add(FloatVector.fromArray(F, l, p + second + 8)));
                    c = c.add(c.rearrange(SWAP1));
                    c = c.add(c.rearrange(SWAP2));
                    c = c.add(c.rearrange(SWAP4));
                    s = c.lane(0);
                } else {
                    float[] c = new float[8];
                    for (int j = 0; j < 8; j++) c[j] = (l[p + j] + l[p + second + j]) + (l[p + 8 + j] + l[p + second + 8 + j]);
                    s = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
                }
                for (int k = n32; k < n; k++) s = Math.fma(w[wOff + r * wStride + k], x[xOff + t * xStride + k], s);
                out[o + r * oRow + t * oTok] = s;
            }
        }
    }

    /** Copies {@code n} floats from natural order into lane-group order (tokens for the tiles). */
    public static void toLaneOrder(float[] src, int srcOffset, float[] dst, int dstOffset, int n) {
        if (!QuantSupport.VECTOR) {
            KernelBase.toLaneOrder(src, srcOffset, dst, dstOffset, n);
            return;
        }
        int n32 = n & ~31, h = n32 / 2;
        for (int i = 0; i < n32; i += 32) {
            int o = dstOffset + i / 2, si = srcOffset + i;
            FloatVector.fromArray(F, src, si).intoArray(dst, o);
            FloatVector.fromArray(F, src, si + 8).intoArray(dst, o + 8);
            FloatVector.fromArray(F, src, si + 16).intoArray(dst, o + h);
            FloatVector.fromArray(F, src, si + 24).intoArray(dst, o + h + 8);
        }
        System.arraycopy(src, srcOffset + n32, dst, dstOffset + n32, n - n32);
    }
}
