package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.Moe4jException;

/** The engine's kernels need the Vector API; without it moe4j refuses to start rather than run slowly. */
final class VectorApiCheck {
    private VectorApiCheck() {
    }

    static void requireVectorApi() {
        try {
            Model.requireVectorApi();
        } catch (Moe4jException e) {
            System.err.println("moe4j: " + e.getMessage());
            throw e;
        }
        if (!io.moe4j.kernels.SimdStatus.vectorKernels()) {
            System.err.println("moe4j: WARNING: running without the SIMD kernels (" + io.moe4j.kernels.SimdStatus.describe()
                    + "): expect inference many times slower than on a CPU with 256-bit vectors");
        }
    }
}
