package io.moe4j.kernels;

/**
 * Storage of one cached key or value element: float32 (verification), float16 (llama.cpp's default) or ggml's
 * Q8_0 blocks (32 values as an f16 scale d and 32 int8 q, value = d × q; the head size must be a multiple of 32).
 */
public enum KvType {
    F32, F16, Q8_0;

    /** Bytes of {@code n} values (a multiple of 32 for Q8_0). */
    public long bytesFor(long n) {
        return switch (this) {
            case F32 -> 4 * n;
            case F16 -> 2 * n;
            case Q8_0 -> n / 32 * 34;
        };
    }
}
