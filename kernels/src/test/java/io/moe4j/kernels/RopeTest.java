package io.moe4j.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RopeTest {

    /** Rotates one head with the textbook formula: pairs per style, theta_i = pos * base^(-2i/n) / factor_i. */
    static float[] reference(float[] x, Rope.Style style, int nRot, double base, int pos, float[] factors) {
        float[] y = x.clone();
        for (int i = 0; i < nRot / 2; i++) {
            double theta = pos * Math.pow(base, -2.0 * i / nRot) / (factors == null ? 1 : factors[i]);
            int a = style == Rope.Style.NORM ? 2 * i : i, b = style == Rope.Style.NORM ? 2 * i + 1 : i + nRot / 2;
            y[a] = (float) (x[a] * Math.cos(theta) - x[b] * Math.sin(theta));
            y[b] = (float) (x[a] * Math.sin(theta) + x[b] * Math.cos(theta));
        }
        return y;
    }

    @Test
    void matchesTheFormulaForBothStylesPartialRotationAndFrequencyFactors() {
        java.util.Random r = new java.util.Random(1);
        for (Rope.Style style : Rope.Style.values()) {
            for (int nRot : new int[]{8, 16}) {
                float[] factors = new float[nRot / 2];
                for (int i = 0; i < factors.length; i++) factors[i] = 1 + r.nextFloat() * 7;
                for (float[] ff : new float[][]{null, factors}) {
                    Rope rope = new Rope(style, nRot, 10000, Rope.Scaling.NONE, 1, 0, 32, 1, 1, ff);
                    float[] x = new float[16];
                    for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                    for (int pos : new int[]{0, 1, 17, 4000}) {
                        float[] y = x.clone();
                        rope.apply(y, 0, 1, 16, pos, new float[nRot / 2], new float[nRot / 2]);
                        float[] expected = reference(x, style, nRot, 10000, pos, ff);
                        for (int i = 0; i < 16; i++) {
                            assertEquals(expected[i], y[i], 2e-5, style + " nRot " + nRot + " pos " + pos + " dim " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void linearScalingDividesPositions() {
        Rope scaled = new Rope(Rope.Style.NEOX, 8, 10000, Rope.Scaling.LINEAR, 4, 0);
        Rope plain = new Rope(Rope.Style.NEOX, 8, 10000, Rope.Scaling.NONE, 1, 0);
        float[] a = {1, 2, 3, 4, 5, 6, 7, 8}, b = a.clone();
        scaled.apply(a, 0, 1, 8, 40, new float[4], new float[4]);
        plain.apply(b, 0, 1, 8, 10, new float[4], new float[4]);
        for (int i = 0; i < 8; i++) assertEquals(b[i], a[i], 1e-5);
    }

    /**
     * YaRN's extrapolation mix: 0 is plain linear interpolation without the magnitude correction, 1 the published
     * ramp; a value between blends the frequencies (dimensions on the ramp move, the others stay).
     */
    @Test
    void yarnExtFactorZeroIsLinearInterpolationAndOneIsTheRamp() {
        int nRot = 64, ctx = 4096;
        double base = 1e6, factor = 4;
        Rope linear = new Rope(Rope.Style.NEOX, nRot, base, Rope.Scaling.LINEAR, factor, ctx);
        Rope off = new Rope(Rope.Style.NEOX, nRot, base, Rope.Scaling.YARN, factor, ctx, 0.0, 32, 1, 1, null);
        Rope yarn = new Rope(Rope.Style.NEOX, nRot, base, Rope.Scaling.YARN, factor, ctx);
        Rope explicitOne = new Rope(Rope.Style.NEOX, nRot, base, Rope.Scaling.YARN, factor, ctx, 1.0, 32, 1, 1, null);
        Rope half = new Rope(Rope.Style.NEOX, nRot, base, Rope.Scaling.YARN, factor, ctx, 0.5, 32, 1, 1, null);
        int h = nRot / 2, pos = 10000;
        float[][] c = new float[5][h], s = new float[5][h];
        Rope[] ropes = {linear, off, yarn, explicitOne, half};
        for (int i = 0; i < ropes.length; i++) ropes[i].angles(pos, c[i], s[i], 0);
        float mscale = (float) (1 + 0.1 * Math.log(factor));
        boolean halfDiffers = false;
        for (int i = 0; i < h; i++) {
            assertEquals(c[0][i], c[1][i], 0f, "ext 0 = linear, cos " + i);
            assertEquals(s[0][i], s[1][i], 0f, "ext 0 = linear, sin " + i);
            assertEquals(c[2][i], c[3][i], 0f, "the default ext factor is 1");
            double r2 = (double) c[4][i] * c[4][i] + (double) s[4][i] * s[4][i];
            assertEquals(mscale * mscale, r2, 1e-5, "ext 0.5 keeps the magnitude correction");
            double a0 = Math.atan2(s[0][i], c[0][i]), a1 = Math.atan2(s[2][i], c[2][i]), ah = Math.atan2(s[4][i], c[4][i]);
            if (Math.abs(a0 - a1) > 1e-3 && Math.abs(ah - a0) > 1e-4 && Math.abs(ah - a1) > 1e-4) halfDiffers = true;
        }
        org.junit.jupiter.api.Assertions.assertTrue(halfDiffers, "a mix of 0.5 lies between interpolation and the full ramp");
    }
}
