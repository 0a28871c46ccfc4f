package io.moe4j.kernels.cpu;

import io.moe4j.kernels.Tensor;

/** A tensor of the CPU backend: a Java array, read and written by the kernels in place. */
public record CpuTensor(float[] a) implements Tensor {
    @Override
    public long size() {
        return a.length;
    }

    /** The array of {@code t} (null for null): the CPU backend accepts only its own tensors. */
    public static float[] of(Tensor t) {
        if (t == null) return null;
        if (t instanceof CpuTensor c) return c.a;
        throw new IllegalArgumentException("a tensor of another backend was passed to the CPU backend");
    }
}
