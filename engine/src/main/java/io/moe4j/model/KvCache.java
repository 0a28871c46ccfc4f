package io.moe4j.model;

import io.moe4j.kernels.ops.KvBuffer;

/**
 * Keys and values of one sequence for every layer. Positions [0, length) are filled; the cache grows as tokens are
 * added, up to {@code capacity} (the context size).
 */
public final class KvCache {
    final KvBuffer[] keys;
    final KvBuffer[] values;
    private final int capacity;
    private final KvBuffer.Type type;
    private int length;

    public KvCache(ModelConfig cfg, int capacity, KvBuffer.Type type) {
        if (capacity <= 0) throw new IllegalArgumentException("context size must be positive, got " + capacity);
        this.capacity = capacity;
        this.type = type;
        int n = cfg.blockCount();
        keys = new KvBuffer[n];
        values = new KvBuffer[n];
        for (int i = 0; i < n; i++) {
            keys[i] = KvBuffer.create(type, cfg.kvHeadCount(), cfg.headDim());
            values[i] = KvBuffer.create(type, cfg.kvHeadCount(), cfg.headDim());
        }
    }

    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public KvBuffer.Type type() {
        return type;
    }

    /** Forgets positions from {@code newLength} on (to reuse a shared prefix, or to start over with 0). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " positions to " + newLength);
        }
        length = newLength;
    }

    /**
     * For benchmarks: appends {@code n} positions of random keys and values (as if {@code n} tokens had been
     * evaluated), so that decoding can be measured at a given context depth without evaluating a long prompt.
     */
    public void appendRandom(int n, long seed) {
        if (length + n > capacity) throw new ContextOverflowException(length, n, capacity);
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        float[] row = new float[keys[0].width()];
        for (int l = 0; l < keys.length; l++) {
            for (int p = length; p < length + n; p++) {
                for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
                keys[l].write(p, row, 0);
                for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
                values[l].write(p, row, 0);
            }
        }
        length += n;
    }

    void advance(int n) {
        length += n;
    }

    /** Bytes held by keys and values of all layers. */
    public long bytes() {
        long b = 0;
        for (int i = 0; i < keys.length; i++) b += keys[i].bytes() + values[i].bytes();
        return b;
    }
}
