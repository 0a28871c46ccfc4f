package io.moe4j.kernels;

/** The conformance suite on the SIMD CPU backend. */
class CpuBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend backend() {
        return Backend.cpu();
    }
}
