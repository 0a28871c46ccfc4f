package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The flash-style attention kernel against a plain two-pass softmax in double precision, on random data: grouped
 * query heads, sliding windows, sinks, F32 and F16 caches, lengths that are not multiples of the block or of 4, head
 * sizes with and without a SIMD path. And a token's result is bit-identical in a batch and alone.
 */
class AttentionTest {

    static float[] gauss(Random r, int n, double s) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (r.nextGaussian() * s);
        return f;
    }

    /** Two-pass softmax attention in double precision, reading the cache through its scalar accessors. */
    static double[] reference(float[] q, int qOff, int nHead, int nKv, int hd, KvBuffer k, KvBuffer v, int first, int last,
                              float scale, float[] sinks) {
        double[] out = new double[nHead * hd];
        int group = nHead / nKv;
        for (int h = 0; h < nHead; h++) {
            int col = h / group * hd;
            int n = last - first + 1;
            double[] s = new double[n];
            double max = sinks != null ? sinks[h] : Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                double d = 0;
                float[] row = new float[hd];
                for (int i = 0; i < hd; i++) row[i] = value(k, first + j, col + i);
                for (int i = 0; i < hd; i++) d += (double) q[qOff + h * hd + i] * row[i];
                s[j] = d * scale;
                max = Math.max(max, s[j]);
            }
            double sum = sinks != null ? Math.exp(sinks[h] - max) : 0;
            for (int j = 0; j < n; j++) sum += Math.exp(s[j] - max);
            for (int j = 0; j < n; j++) {
                double p = Math.exp(s[j] - max) / sum;
                for (int i = 0; i < hd; i++) out[h * hd + i] += p * value(v, first + j, col + i);
            }
        }
        return out;
    }

    static float value(KvBuffer b, int pos, int col) {
        return b.get(pos, col);
    }

    @Test
    void matchesTwoPassSoftmaxForEveryShape() {
        Random r = new Random(3);
        int[][] shapes = {{4, 4, 16}, {8, 2, 64}, {8, 1, 128}, {6, 3, 12}, {2, 2, 8}, {16, 2, 64}};
        for (KvType type : KvType.values()) {
            for (int[] sh : shapes) {
                int nHead = sh[0], nKv = sh[1], hd = sh[2], width = nKv * hd;
                if (type == KvType.Q8_0 && hd % 32 != 0) continue; // Q8_0 blocks are 32 values of one head
                int len = 1 + r.nextInt(600); // up to 3 pages: blocks that span two pages
                KvBuffer k = KvBuffer.create(type, nKv, hd), v = KvBuffer.create(type, nKv, hd);
                for (int p = 0; p < len; p++) {
                    k.write(p, gauss(r, width, 1), 0);
                    v.write(p, gauss(r, width, 1), 0);
                }
                float[] q = gauss(r, nHead * hd, 1);
                float scale = (float) (1 / Math.sqrt(hd));
                for (int first : new int[]{0, len / 3, len - 1}) {
                    for (float[] sinks : new float[][]{null, gauss(r, nHead, 1)}) {
                        float[] out = new float[nHead * hd + 2];
                        Attention.attend(q, 0, nHead, nKv, hd, k, v, first, len - 1, scale, sinks, out, 1);
                        double[] want = reference(q, 0, nHead, nKv, hd, k, v, first, len - 1, scale, sinks);
                        for (int i = 0; i < want.length; i++) {
                            assertEquals(want[i], out[1 + i], 2e-5 * (1 + Math.abs(want[i])),
                                    type + " heads " + nHead + "/" + nKv + " hd " + hd + " len " + len + " first " + first + " i " + i);
                        }
                        assertEquals(0f, out[0]);
                        assertEquals(0f, out[out.length - 1]);
                    }
                }
            }
        }
    }

    @Test
    void aTokenGetsTheSameBitsInABatchAsAlone() {
        Random r = new Random(9);
        int nHead = 8, nKv = 2, hd = 64, width = nKv * hd, n = 37;
        for (KvType type : KvType.values()) {
            KvBuffer k = KvBuffer.create(type, nKv, hd), v = KvBuffer.create(type, nKv, hd);
            for (int p = 0; p < 100; p++) {
                k.write(p, gauss(r, width, 1), 0);
                v.write(p, gauss(r, width, 1), 0);
            }
            float[] q = gauss(r, n * nHead * hd, 1);
            KvBuffer[] ks = new KvBuffer[n], vs = new KvBuffer[n];
            for (boolean window : new boolean[]{false, true}) {
                float[] sinks = window ? gauss(r, nHead, 1) : null;
                int[] first = new int[n], last = new int[n];
                for (int t = 0; t < n; t++) {
                    ks[t] = k;
                    vs[t] = v;
                    last[t] = 60 + t;
                    // without a window all tokens share their blocks (grouped); with one each has its own start
                    first[t] = window ? Math.max(0, last[t] - 40) : 0;
                }
                float[] batch = new float[n * nHead * hd];
                Attention.attend(n, q, nHead * hd, nHead, nKv, hd, ks, vs, first, last, 0.125f, sinks, batch);
                for (int t = 0; t < n; t++) {
                    float[] alone = new float[nHead * hd];
                    Attention.attend(q, t * nHead * hd, nHead, nKv, hd, k, v, first[t], last[t], 0.125f, sinks, alone, 0);
                    for (int i = 0; i < alone.length; i++) {
                        assertEquals(Float.floatToIntBits(alone[i]), Float.floatToIntBits(batch[t * nHead * hd + i]),
                                type + " window " + window + " token " + t);
                    }
                }
            }
        }
    }

    @Test
    void vectorAndScalarExpAgreeBitForBitAndAreAccurate() {
        Random r = new Random(1);
        float[] x = new float[4096], v = new float[4096];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 200 - 100);
        x[0] = 0f;
        x[1] = -0f;
        x[2] = Float.NEGATIVE_INFINITY;
        x[3] = -87.5f;
        for (int i = 0; i < x.length; i += 8) {
            VectorMath.exp(jdk.incubator.vector.FloatVector.fromArray(VectorMath.F, x, i)).intoArray(v, i);
        }
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.floatToIntBits(VectorMath.exp(x[i])), Float.floatToIntBits(v[i]), "x = " + x[i]);
            if (x[i] >= -87 && x[i] <= 88) {
                double want = Math.exp(x[i]);
                assertTrue(Math.abs(v[i] - want) <= 3e-7 * want, "exp(" + x[i] + ") = " + v[i] + ", want " + want);
            }
        }
        assertEquals(1f, VectorMath.exp(0f));
        assertEquals(VectorMath.exp(88f), VectorMath.exp(100f)); // clamped, never infinite
    }

    @Test
    void swigluSimdBodyAndScalarTailAgree() {
        Random r = new Random(2);
        float[] g = gauss(r, 37, 3), u = gauss(r, 37, 3);
        float[] a = g.clone(), b = g.clone();
        Activations.swiglu(a, 0, u, 0, 37);
        for (int i = 0; i < 37; i++) Activations.swiglu(b, i, u, i, 1); // every element through the scalar tail
        for (int i = 0; i < 37; i++) {
            assertEquals(Float.floatToIntBits(b[i]), Float.floatToIntBits(a[i]), "element " + i);
            double want = g[i] / (1 + Math.exp(-g[i])) * u[i];
            assertEquals(want, a[i], 1e-5 * (1 + Math.abs(want)));
        }
        float[] c = g.clone(), d = g.clone();
        Activations.swigluClamped(c, 0, u, 0, 37, 1.702f, 7f);
        for (int i = 0; i < 37; i++) Activations.swigluClamped(d, i, u, i, 1, 1.702f, 7f);
        for (int i = 0; i < 37; i++) assertEquals(Float.floatToIntBits(d[i]), Float.floatToIntBits(c[i]), "clamped element " + i);
    }
}
