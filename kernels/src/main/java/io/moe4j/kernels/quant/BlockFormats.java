package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;

/** The {@link BlockFormat} of each supported weight type. */
public final class BlockFormats {
    private BlockFormats() {
    }

    public static BlockFormat of(GgmlType type) {
        return switch (type) {
            case F32 -> F32Format.INSTANCE;
            case F16 -> F16Format.INSTANCE;
            case BF16 -> BF16Format.INSTANCE;
            default -> throw new UnsupportedOperationException("weight type " + type + " has no kernel"
                    + " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4)");
        };
    }
}
