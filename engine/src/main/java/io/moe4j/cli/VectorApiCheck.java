package io.moe4j.cli;

/** The engine's kernels need the Vector API; without it moe4j refuses to start rather than run slowly. */
final class VectorApiCheck {
    private VectorApiCheck() {
    }

    static void requireVectorApi() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            System.err.println("""
                    moe4j: the Vector API module (jdk.incubator.vector) is not available in this JVM.
                    Start moe4j through bin/moe4j, or add: --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED""");
            throw new IllegalStateException("jdk.incubator.vector is missing: moe4j does not fall back to slow scalar code");
        }
        if (!io.moe4j.kernels.quant.SimdStatus.vectorKernels()) {
            System.err.println("moe4j: WARNING: running without the SIMD kernels (" + io.moe4j.kernels.quant.SimdStatus.describe()
                    + "): expect inference many times slower than on a CPU with 256-bit vectors");
        }
    }
}
