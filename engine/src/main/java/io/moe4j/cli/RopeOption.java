package io.moe4j.cli;

import io.moe4j.kernels.Rope;
import io.moe4j.model.RopeOverrides;
import picocli.CommandLine;
import picocli.CommandLine.Option;

import java.util.Locale;

/**
 * llama.cpp's RoPE options, shared by the commands that run a model: each replaces the model file's value, which is
 * the default. They let a model run past the context it was trained for (YaRN or linear scaling of positions).
 */
public final class RopeOption {
    @Option(names = "--rope-scaling", paramLabel = "TYPE", converter = ScalingConverter.class,
            description = "RoPE frequency scaling: none, linear or yarn (default: the model's).")
    Rope.Scaling scaling;
    @Option(names = "--rope-scale", paramLabel = "N",
            description = "The RoPE context scaling factor: the context is extended N times (default: the model's; "
                    + "without --rope-scaling, the model's scaling type, or linear if it has none).")
    Double scale;
    @Option(names = "--rope-freq-base", paramLabel = "N", description = "The RoPE base frequency (default: the model's).")
    Double freqBase;
    @Option(names = "--yarn-orig-ctx", paramLabel = "N",
            description = "The context the model was trained for, which YaRN measures against (default: the model's).")
    Integer origCtx;
    @Option(names = "--yarn-ext-factor", paramLabel = "N",
            description = "YaRN's extrapolation mix, 0 to 1 (default: 1; 0 is plain interpolation).")
    Double extFactor;
    @Option(names = "--yarn-attn-factor", paramLabel = "N",
            description = "A factor on the magnitude of the rotated queries and keys (default: the model's, or 1).")
    Double attnFactor;
    @Option(names = "--yarn-beta-fast", paramLabel = "N",
            description = "YaRN's low correction dimension (default: the model's, or 32).")
    Double betaFast;
    @Option(names = "--yarn-beta-slow", paramLabel = "N",
            description = "YaRN's high correction dimension (default: the model's, or 1).")
    Double betaSlow;

    /** The overrides given; an invalid value is an {@link IllegalArgumentException} that names its flag. */
    public RopeOverrides overrides() {
        return new RopeOverrides(scaling, scale, freqBase, origCtx, extFactor, attnFactor, betaFast, betaSlow);
    }

    static final class ScalingConverter implements CommandLine.ITypeConverter<Rope.Scaling> {
        @Override
        public Rope.Scaling convert(String value) {
            return switch (value.trim().toLowerCase(Locale.ROOT)) {
                case "none" -> Rope.Scaling.NONE;
                case "linear" -> Rope.Scaling.LINEAR;
                case "yarn" -> Rope.Scaling.YARN;
                default -> throw new CommandLine.TypeConversionException("--rope-scaling takes none, linear or yarn, got '" + value + "'");
            };
        }
    }
}
