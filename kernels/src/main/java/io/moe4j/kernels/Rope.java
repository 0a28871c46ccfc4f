package io.moe4j.kernels;

/**
 * Rotary position embedding over the first {@code nRot} dimensions of each head, with llama.cpp's semantics:
 * NORM rotates adjacent pairs (2i, 2i+1), NEOX rotates (i, i + nRot/2). Frequencies may be scaled linearly or by
 * YaRN (ramp between interpolated and extrapolated frequencies, magnitude corrected by 1 + 0.1 ln(factor)).
 */
public final class Rope {
    public enum Style { NORM, NEOX }

    public enum Scaling { NONE, LINEAR, YARN }

    private final Style style;
    private final int nRot;
    /** Per pair i: the frequency used at position 1, already blended for YaRN. */
    private final double[] freq;
    private final float mscale;

    /**
     * @param factor      context extension factor (ignored for NONE)
     * @param originalCtx the context the model was trained with (YaRN only)
     */
    public Rope(Style style, int nRot, double base, Scaling scaling, double factor, int originalCtx) {
        this(style, nRot, base, scaling, factor, originalCtx, 32.0, 1.0, 1.0, null);
    }

    /**
     * @param freqFactors per-pair divisors of the base frequencies (Llama 3.1's rope_freqs tensor), or null
     */
    public Rope(Style style, int nRot, double base, Scaling scaling, double factor, int originalCtx,
                double betaFast, double betaSlow, double attnFactor, float[] freqFactors) {
        this(style, nRot, base, scaling, factor, originalCtx, 1.0, betaFast, betaSlow, attnFactor, freqFactors);
    }

    /**
     * @param extFactor YaRN's extrapolation mix (llama.cpp's {@code yarn_ext_factor}): the ramp between interpolated
     *                  and extrapolated frequencies is multiplied by it; 0 leaves plain interpolation without the
     *                  magnitude correction, 1 (the default) is YaRN as published
     */
    public Rope(Style style, int nRot, double base, Scaling scaling, double factor, int originalCtx, double extFactor,
                double betaFast, double betaSlow, double attnFactor, float[] freqFactors) {
        if (nRot <= 0 || nRot % 2 != 0) throw new IllegalArgumentException("rope dimension must be even and positive: " + nRot);
        if (freqFactors != null && freqFactors.length != nRot / 2) {
            throw new IllegalArgumentException(freqFactors.length + " rope frequency factors for " + nRot / 2 + " pairs");
        }
        this.style = style;
        this.nRot = nRot;
        int half = nRot / 2;
        this.freq = new double[half];
        double freqScale = scaling == Scaling.NONE ? 1.0 : 1.0 / factor;
        double lo = 0, hi = 0;
        if (scaling == Scaling.YARN) {
            lo = Math.max(0, Math.floor(yarnCorrDim(nRot, originalCtx, betaFast, base)));
            hi = Math.min(nRot - 1, Math.ceil(yarnCorrDim(nRot, originalCtx, betaSlow, base)));
        }
        for (int i = 0; i < half; i++) {
            double extrap = Math.pow(base, -2.0 * i / nRot) / (freqFactors != null ? freqFactors[i] : 1.0);
            double interp = freqScale * extrap;
            freq[i] = switch (scaling) {
                case NONE -> extrap;
                case LINEAR -> interp;
                case YARN -> {
                    double y = (i - lo) / Math.max(0.001, hi - lo);
                    double ramp = (1.0 - Math.min(1.0, Math.max(0.0, y))) * extFactor;
                    yield interp * (1 - ramp) + extrap * ramp;
                }
            };
        }
        this.mscale = (float) (scaling == Scaling.YARN && extFactor != 0 ? attnFactor * (1.0 + 0.1 * Math.log(factor)) : attnFactor);
    }

    private static double yarnCorrDim(int nRot, int originalCtx, double beta, double base) {
        return nRot * Math.log(originalCtx / (beta * 2 * Math.PI)) / (2 * Math.log(base));
    }

    /** The rotation of position {@code pos}: {@code nRot/2} cosines and sines (times the magnitude correction). */
    public void angles(int pos, float[] cos, float[] sin, int off) {
        int half = nRot / 2;
        for (int i = 0; i < half; i++) {
            double theta = pos * freq[i];
            cos[off + i] = (float) Math.cos(theta) * mscale;
            sin[off + i] = (float) Math.sin(theta) * mscale;
        }
    }

    /**
     * The rotation that moves a vector rotated for position p to position {@code p + delta}: {@code nRot/2} cosines
     * and sines of {@code delta · freq}, without the magnitude correction. The rotation of a position is linear in
     * it, so the angle difference is all there is to add; the vector already carries YaRN's magnitude from
     * {@link #angles} (a context shift that scaled it again would grow the key by the factor at every shift).
     */
    public void shiftAngles(int delta, float[] cos, float[] sin, int off) {
        int half = nRot / 2;
        for (int i = 0; i < half; i++) {
            double theta = delta * freq[i];
            cos[off + i] = (float) Math.cos(theta);
            sin[off + i] = (float) Math.sin(theta);
        }
    }

    /** Rotates {@code nHeads} heads of {@code headDim} floats at {@code off} by the angles at {@code cos/sin[csOff..]}. */
    public void apply(float[] x, int off, int nHeads, int headDim, float[] cos, float[] sin, int csOff) {
        int half = nRot / 2;
        for (int h = 0; h < nHeads; h++) {
            int b = off + h * headDim;
            for (int i = 0; i < half; i++) {
                int i0 = style == Style.NORM ? b + 2 * i : b + i;
                int i1 = style == Style.NORM ? i0 + 1 : i0 + half;
                float x0 = x[i0], x1 = x[i1], c = cos[csOff + i], s = sin[csOff + i];
                x[i0] = x0 * c - x1 * s;
                x[i1] = x0 * s + x1 * c;
            }
        }
    }

    /**
     * Rotates {@code nHeads} heads of {@code headDim} floats starting at {@code off} for position {@code pos}.
     * {@code cos}/{@code sin} are caller-owned scratch arrays of at least nRot/2 floats.
     */
    public void apply(float[] x, int off, int nHeads, int headDim, int pos, float[] cos, float[] sin) {
        angles(pos, cos, sin, 0);
        apply(x, off, nHeads, headDim, cos, sin, 0);
    }

    public int nRot() {
        return nRot;
    }
}
