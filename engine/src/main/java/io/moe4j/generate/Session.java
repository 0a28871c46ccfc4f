package io.moe4j.generate;

import io.moe4j.model.KvCache;
import io.moe4j.model.RoutingObserver;
import io.moe4j.model.Transformer;

import java.util.Arrays;

/**
 * The state of one sequence: its KV cache and the tokens it holds. Feeding tokens returns the logits that predict
 * the next one. A session can be rewound to a shorter prefix and continued (prompt caching), and shifted when its
 * context is full ({@link #shift}: the oldest tokens after a kept prefix are dropped). Closing it gives its KV pages
 * back to their pool (a session that is dropped without closing gives them back once unreachable).
 *
 * <p>Besides the tokens it holds ({@link #tokens}), a session keeps its {@link #history}: every token fed, those a
 * shift dropped included, so that a caller that renders the whole sequence again (a chat) can find where the new
 * part starts.
 */
public final class Session implements AutoCloseable {
    /** By default prompts are evaluated in batches of at most this many tokens, to bound activation memory. */
    public static final int PREFILL_BATCH = 512;

    private final Transformer transformer;
    private final KvCache cache;
    private final int prefillBatch;
    /** The tokens held, by position. */
    private int[] tokens = new int[64];
    /** Per position, the index in {@link #history} of its token. */
    private int[] origins = new int[64];
    /** Every token fed since the session was empty, the first {@code historyLength}. */
    private int[] history = new int[64];
    private int historyLength;
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
        int start = cache.length();
        float[] logits = evaluate(input);
        if (historyLength + input.length > history.length) {
            history = Arrays.copyOf(history, Math.max(historyLength + input.length, history.length * 2));
        }
        for (int i = 0; i < input.length; i++) {
            history[historyLength] = input[i];
            origins[start + i] = historyLength++;
        }
        return logits;
    }

    public float[] feed(int token) {
        return feed(new int[]{token});
    }

    /** Runs {@code input} through the model after what the cache holds and records it as the tokens held. */
    private float[] evaluate(int[] input) {
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

    /**
     * Every token fed since the session was empty, in order, those dropped by {@link #shift} included: the
     * {@link #tokens} held are this less the gaps of the shifts. A rewind forgets the history after the last token
     * it keeps.
     */
    public int[] history() {
        return Arrays.copyOf(history, historyLength);
    }

    /** Gives the KV pages back; the session is empty afterwards. */
    @Override
    public void close() {
        cache.close();
        historyLength = 0;
    }

    /** Keeps only the first {@code length} tokens. */
    public void rewind(int length) {
        cache.truncate(length);
        historyLength = length == 0 ? 0 : origins[length - 1] + 1;
    }

    /**
     * Keeps the first {@code n} tokens of the {@link #history} and forgets the rest: the tokens held that came from
     * them stay, as far as the cache can keep them ({@link KvCache#keepable}: a sliding window may have dropped what
     * a shorter sequence would attend to). Returns how much of the history is kept: {@code n}, or less where the
     * cache could not keep all of it; feeding the history from there on continues it.
     */
    public int rewindHistory(int n) {
        n = Math.clamp(n, 0, historyLength);
        int held = 0;
        while (held < cache.length() && origins[held] < n) held++;
        int keep = cache.keepable(held);
        cache.truncate(keep);
        // A gap of a shift right after the tokens kept stays a gap: its tokens are part of the history kept.
        historyLength = keep == held ? n : origins[keep];
        return historyLength;
    }

    /**
     * A context shift: drops the {@code discard} tokens after the first {@code keep} held, and moves the later ones
     * down to follow the kept prefix, as llama.cpp's context shift does: their cached keys are rotated to the new
     * positions ({@link Transformer#shift}), so nothing is evaluated again. Where the cache cannot be shifted (a
     * sliding window has given back kept positions that it would attend to again, or latent attention, whose rows
     * {@link io.moe4j.model.KvCache#shift} does not rotate) the tokens kept are evaluated again, which gives the same
     * state.
     */
    public void shift(int keep, int discard) {
        int length = cache.length();
        if (keep < 0 || discard < 0 || keep + discard > length) {
            throw new IllegalArgumentException("cannot drop " + discard + " tokens after " + keep + " of " + length);
        }
        if (discard == 0) return;
        int moved = length - keep - discard;
        if (transformer.shift(cache, keep, discard)) {
            System.arraycopy(tokens, keep + discard, tokens, keep, moved);
            System.arraycopy(origins, keep + discard, origins, keep, moved);
            return;
        }
        int[] kept = new int[keep + moved], keptOrigins = new int[keep + moved];
        System.arraycopy(tokens, 0, kept, 0, keep);
        System.arraycopy(tokens, keep + discard, kept, keep, moved);
        System.arraycopy(origins, 0, keptOrigins, 0, keep);
        System.arraycopy(origins, keep + discard, keptOrigins, keep, moved);
        cache.truncate(0);
        evaluate(kept);
        System.arraycopy(keptOrigins, 0, origins, 0, kept.length);
    }

    public KvCache cache() {
        return cache;
    }

    private void ensureCapacity(int n) {
        if (n > tokens.length) {
            int size = Math.max(n, tokens.length * 2);
            tokens = Arrays.copyOf(tokens, size);
            origins = Arrays.copyOf(origins, size);
        }
    }
}
