package io.moe4j.kernels;

import io.moe4j.kernels.quant.BlockFormats;

import jdk.incubator.vector.FloatVector;

/** Whether the weight kernels run their Vector API paths here, so callers can say it loudly when they do not. */
public final class SimdStatus {
    private SimdStatus() {
    }

    /** True when the 256-bit vector kernels are in use; false on narrower hardware or with -Dmoe4j.kernels.scalar=true. */
    public static boolean vectorKernels() {
        return BlockFormats.vectorKernels();
    }

    public static String describe() {
        return "preferred vector width " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + " bits, "
                + (BlockFormats.vectorKernels() ? "256-bit SIMD kernels" : "SCALAR kernels (slow)");
    }
}
