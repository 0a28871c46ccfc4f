package io.moe4j.generate;

import io.moe4j.model.KvCache;
import io.moe4j.model.RoutingObserver;
import io.moe4j.model.Transformer;

import java.util.Arrays;

/**
 * The state of one sequence: its KV cache and the tokens it holds. Feeding tokens returns the logits that predict
 * the next one. A session can be rewound to a shorter prefix and continued (prompt caching). Closing it gives its
 * KV pages back to their pool (a session that is dropped without closing gives them back once unreachable).
 */
public final class Session implements AutoCloseable {
    /** By default prompts are evaluated in batches of at most this many tokens, to bound activation memory. */
    public static final int PREFILL_BATCH = 512;

    private final Transformer transformer;
    private final KvCache cache;
    private final int prefillBatch;
    private int[] tokens = new int[64];
    private RoutingObserver observer;

    public Session(Transformer transformer, KvCache cache) {
        this(transformer, cache, PREFILL_BATCH);
    }

    /** A session that evaluates prompts in batches of at most {@code prefillBatch} tokens. */
    public Session(Transformer transformer, KvCache cache, int prefillBatch) {
        if (prefillBatch < 1) throw new IllegalArgumentException("the prefill batch must be at least 1 token, got " + prefillBatch);
        this.transformer = transformer;
        this.cache = cache;
        this.prefillBatch = prefillBatch;
    }

    public void setRoutingObserver(RoutingObserver observer) {
        this.observer = observer;
    }

    /** Evaluates {@code input} after what the session holds; returns the logits after its last token. */
    public float[] feed(int[] input) {
        if (input.length == 0) throw new IllegalArgumentException("nothing to feed");
        float[] logits = null;
        for (int from = 0; from < input.length; from += prefillBatch) {
            int n = Math.min(prefillBatch, input.length - from);
            int[] chunk = Arrays.copyOfRange(input, from, from + n);
            int start = cache.length();
            logits = transformer.forward(chunk, n, cache, false, observer);
            ensureCapacity(start + n);
            System.arraycopy(chunk, 0, tokens, start, n);
        }
        return logits;
    }

    public float[] feed(int token) {
        return feed(new int[]{token});
    }

    /** Number of tokens held (and cached). */
    public int length() {
        return cache.length();
    }

    public int capacity() {
        return cache.capacity();
    }

    public int[] tokens() {
        return Arrays.copyOf(tokens, cache.length());
    }

    /** Internal view for samplers: the first {@link #length()} entries are the sequence. */
    int[] tokenBuffer() {
        return tokens;
    }

    /** Gives the KV pages back; the session is empty afterwards. */
    @Override
    public void close() {
        cache.close();
    }

    /** Keeps only the first {@code length} tokens. */
    public void rewind(int length) {
        cache.truncate(length);
    }

    public KvCache cache() {
        return cache;
    }

    private void ensureCapacity(int n) {
        if (n > tokens.length) tokens = Arrays.copyOf(tokens, Math.max(n, tokens.length * 2));
    }
}
