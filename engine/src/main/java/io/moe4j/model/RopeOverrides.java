package io.moe4j.model;

import io.moe4j.kernels.Rope;

/**
 * RoPE parameters that replace the model file's, as llama.cpp's {@code --rope-*} and {@code --yarn-*} options do;
 * a null field keeps the file's value. Used to run a model past the context it was trained for (or to reproduce
 * another engine's settings).
 *
 * @param scaling         none, linear or yarn
 * @param scale           the context extension factor (positions are compressed by it)
 * @param freqBase        the base frequency θ
 * @param originalContext the context the model was trained for, which YaRN's ramp is measured against
 * @param extFactor       YaRN's extrapolation mix (1: YaRN as published; 0: plain interpolation)
 * @param attnFactor      a factor on the rotated queries' and keys' magnitude
 * @param betaFast        YaRN's fast boundary (rotations per context below which dimensions are interpolated)
 * @param betaSlow        YaRN's slow boundary (above which dimensions are extrapolated)
 */
public record RopeOverrides(Rope.Scaling scaling, Double scale, Double freqBase, Integer originalContext,
                            Double extFactor, Double attnFactor, Double betaFast, Double betaSlow) {

    public static final RopeOverrides NONE = new RopeOverrides(null, null, null, null, null, null, null, null);

    public RopeOverrides {
        positive("--rope-scale", scale);
        positive("--rope-freq-base", freqBase);
        positive("--yarn-attn-factor", attnFactor);
        positive("--yarn-beta-fast", betaFast);
        positive("--yarn-beta-slow", betaSlow);
        if (originalContext != null && originalContext <= 0) {
            throw new IllegalArgumentException("--yarn-orig-ctx must be positive, got " + originalContext);
        }
        if (extFactor != null && !(extFactor >= 0 && extFactor <= 1)) {
            throw new IllegalArgumentException("--yarn-ext-factor must be between 0 and 1, got " + extFactor);
        }
    }

    private static void positive(String flag, Double v) {
        if (v != null && !(v > 0 && v < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(flag + " must be a positive number, got " + v);
        }
    }

    public boolean isEmpty() {
        return equals(NONE);
    }

    /**
     * {@code cfg} with these overrides. A scale without a scaling type keeps the model's type, or is linear
     * scaling when the model has none; {@code --rope-scaling none} turns scaling off whatever the scale.
     */
    public ModelConfig apply(ModelConfig cfg) {
        if (isEmpty()) return cfg;
        Rope.Scaling type = scaling != null ? scaling
                : scale != null && cfg.ropeScaling() == Rope.Scaling.NONE ? Rope.Scaling.LINEAR : cfg.ropeScaling();
        double factor = type == Rope.Scaling.NONE ? 1.0
                : scale != null ? scale : cfg.ropeScaling() != Rope.Scaling.NONE ? cfg.ropeScalingFactor() : 1.0;
        if (type != Rope.Scaling.NONE && factor == 1.0 && scaling == null) type = Rope.Scaling.NONE;
        return cfg.withRope(freqBase != null ? freqBase : cfg.ropeBase(), type, factor,
                originalContext != null ? originalContext : cfg.ropeOriginalContext(),
                attnFactor != null ? attnFactor : cfg.ropeAttnFactor(),
                extFactor != null ? extFactor : cfg.yarnExtFactor(),
                betaFast != null ? betaFast : cfg.yarnBetaFast(),
                betaSlow != null ? betaSlow : cfg.yarnBetaSlow());
    }
}
