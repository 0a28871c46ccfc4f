package io.moe4j.kernels;

/**
 * Floats that a {@link Backend} allocated and owns: the activations of a forward pass, logits, constant vectors
 * (norm weights, biases, sinks). The forward pass never reads them directly; it passes them to the backend's
 * operations and copies out only what it needs on the host ({@link Backend#read}). On the CPU a tensor is a Java
 * array; on a device it is device memory.
 */
public interface Tensor {
    /** Number of floats. */
    long size();
}
