package io.moe4j.model;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.Rope;
import io.moe4j.kernels.Tensor;
import io.moe4j.Moe4jException;

/**
 * Keys and values of one sequence for every layer. Positions [0, length) are filled; the cache takes pages of
 * {@link KvStore#PAGE} positions from its {@link KvPool} as tokens are added, up to {@code capacity} (the context
 * size), and gives them back when positions are dropped ({@link #truncate}) or the cache is closed. Sliding-window
 * layers give back the pages that fall wholly out of the window, so they hold about the window whatever the length.
 * With latent attention ({@link ModelConfig#valuesInKeys}) a layer stores one row per position and no values: the
 * value is the first part of the row.
 */
public final class KvCache implements AutoCloseable {
    final KvStore[] keys;
    final KvStore[] values;
    private final ModelConfig cfg;
    private final int capacity;
    private final KvType type;
    private final KvPool pool;
    private int length;

    /** A cache with pages from the CPU backend's default pool. */
    public KvCache(ModelConfig cfg, int capacity, KvType type) {
        this(cfg, capacity, type, Backend.cpu().defaultKvPool());
    }

    /** A cache with pages from {@code pool}, which belongs to the backend that runs the model. */
    public KvCache(ModelConfig cfg, int capacity, KvType type, KvPool pool) {
        if (capacity <= 0) throw new IllegalArgumentException("context size must be positive, got " + capacity);
        if (type == KvType.Q8_0 && cfg.valuesInKeys() && (cfg.headDim() % 32 != 0 || cfg.valueDim() % 32 != 0)) {
            throw new Moe4jException("a Q8_0 KV cache needs rows of whole blocks of 32 values (ggml's blocks); this model's "
                    + "latent attention caches rows of " + cfg.headDim() + " values whose first " + cfg.valueDim()
                    + " are the value (kv_lora_rank " + cfg.valueDim() + " + rope " + (cfg.headDim() - cfg.valueDim())
                    + "): use --kv-type f16");
        }
        if (type == KvType.Q8_0 && cfg.headDim() % 32 != 0) {
            throw new Moe4jException("a Q8_0 KV cache needs a head size that is a multiple of 32 (ggml's blocks of 32 per head); "
                    + "this model's is " + cfg.headDim() + ": use --kv-type f16");
        }
        this.cfg = cfg;
        this.capacity = capacity;
        this.type = type;
        this.pool = pool;
        int n = cfg.blockCount();
        keys = new KvStore[n];
        values = new KvStore[n];
        for (int i = 0; i < n; i++) {
            keys[i] = pool.newStore(type, cfg.kvHeadCount(), cfg.headDim());
            values[i] = cfg.valuesInKeys() ? null : pool.newStore(type, cfg.kvHeadCount(), cfg.headDim());
        }
    }

    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public KvType type() {
        return type;
    }

    public KvPool pool() {
        return pool;
    }

    /**
     * Takes the pages for {@code n} more positions in every layer now, so that evaluating them cannot run out of
     * memory halfway. Throws {@link KvBudgetExceededException} when the pool's budget has no room for them (the
     * pages taken so far stay with this cache).
     */
    public void reserve(int n) {
        int upTo = length + n;
        for (int l = 0; l < keys.length; l++) {
            if (!keys[l].reserve(length, upTo) || values[l] != null && !values[l].reserve(length, upTo)) {
                long missing = 0;
                for (int j = l; j < keys.length; j++) missing += missingBytes(keys[j], upTo) + missingBytes(values[j], upTo);
                KvPool.Stats s = pool.stats();
                throw new KvBudgetExceededException(s.budget(), s.bytesInUse(), missing, n);
            }
        }
    }

    private long missingBytes(KvStore b, int upTo) {
        if (b == null) return 0;
        long pageBytes = KvPool.pageBytes(type, cfg.kvHeadCount(), cfg.headDim());
        long need = (long) (upTo - Math.min(upTo, b.firstStored()) + KvStore.PAGE - 1) / KvStore.PAGE * pageBytes;
        return Math.max(0, need - b.bytes());
    }

    /**
     * Makes this empty cache hold the first {@code n} positions of {@code src} (same model, type and pool) by
     * sharing its pages: a common prompt prefix is stored once. A page that both hold is copied when either writes
     * into it, so neither sees the other's later positions. {@code n} must be {@link #keepable} in {@code src}.
     */
    public void shareFrom(KvCache src, int n) {
        if (length != 0) throw new IllegalStateException("only an empty cache can share another's positions");
        if (src.cfg != cfg && !src.cfg.equals(cfg) || src.type != type || src.pool != pool) {
            throw new IllegalArgumentException("positions can only be shared between caches of one model, type and pool");
        }
        if (n > capacity || src.keepable(n) != n) {
            throw new IllegalArgumentException("cannot share " + n + " positions of a cache of " + src.length);
        }
        for (int l = 0; l < keys.length; l++) {
            keys[l].shareFrom(src.keys[l], n);
            if (values[l] != null) values[l].shareFrom(src.values[l], n);
        }
        length = 0;
        advance(n);
    }

    /** The longest prefix of at most {@code n} positions that {@link #truncate} can keep (sliding layers dropped the rest). */
    public int keepable(int n) {
        n = Math.min(n, length);
        for (int l = 0; l < keys.length && n > 0; l++) {
            if (keys[l].firstStored() > cfg.attentionStart(l, n)) return 0;
        }
        return n;
    }

    /**
     * Whether {@link #truncate} can always come back to the current length after more tokens: no layer gives back
     * positions that leave a sliding window.
     */
    public boolean rewindable() {
        for (int l = 0; l < keys.length; l++) if (cfg.arch().usesSlidingWindow(l)) return false;
        return true;
    }

    /** Forgets positions from {@code newLength} on (to reuse a shared prefix, or to start over with 0). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " positions to " + newLength);
        }
        if (keepable(newLength) != newLength) {
            throw new IllegalArgumentException("cannot truncate to " + newLength + " positions: the sliding-window layers "
                    + "have dropped positions the next token would attend to");
        }
        for (int l = 0; l < keys.length; l++) {
            keys[l].truncate(newLength);
            if (values[l] != null) values[l].truncate(newLength);
        }
        length = newLength;
    }

    /**
     * A context shift: forgets positions {@code [keep, keep + discard)}, moves the later ones down by {@code discard}
     * ({@link Backend#shiftKv}: keys rotated by {@code rope} to their new positions, values as they are) and
     * shortens the cache by {@code discard}, as if the tokens kept had been evaluated at their new positions; the
     * sliding-window layers then give back what falls out of the next token's window.
     *
     * <p>False, with nothing changed, when a sliding-window layer would lack positions that the next token attends
     * to: kept positions it gave back because they had fallen out of its window, when the gap brings them back into
     * it (the tokens kept must then be evaluated again; it takes a kept prefix near the end of the context). False
     * too for latent attention ({@link ModelConfig#valuesInKeys}): its cached row is [c | rope(k_pe)], rotated in its
     * last {@code qk_rope} values only, and {@link Backend#shiftKv} rotates the first dimensions of a head; the
     * tokens kept are then evaluated again, which gives the same state.
     *
     * @throws KvBudgetExceededException when the pool has no room for the pages a sliding-window layer moves into
     */
    public boolean shift(Backend backend, Rope rope, int keep, int discard) {
        if (keep < 0 || discard < 0 || keep + discard > length) {
            throw new IllegalArgumentException("cannot drop " + discard + " positions after " + keep + " of a cache of " + length);
        }
        if (discard == 0) return true;
        if (cfg.valuesInKeys()) return false;
        int newLength = length - discard;
        for (int l = 0; l < keys.length; l++) {
            // what a store holds after the shift (Backend.shiftKv)
            int first = keys[l].firstStored(), after = first <= keep ? first : Math.max(keep, first - discard);
            if (newLength > 0 && after > cfg.attentionStart(l, newLength)) return false;
        }
        if (!backend.shiftKv(rope, keys, values, keep, discard, length)) {
            KvPool.Stats s = pool.stats();
            throw new KvBudgetExceededException(s.budget(), s.bytesInUse(), KvPool.pageBytes(type, cfg.kvHeadCount(), cfg.headDim()),
                    "to shift its context (at least a page to move a sliding window's positions into)");
        }
        length = newLength;
        advance(0);
        return true;
    }

    /** Gives every page back to the pool; the cache is empty afterwards (and may be filled again). */
    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            keys[l].close();
            if (values[l] != null) values[l].close();
        }
        length = 0;
    }

    /**
     * For benchmarks: appends {@code n} positions of random keys and values (as if {@code n} tokens had been
     * evaluated), so that decoding can be measured at a given context depth without evaluating a long prompt. Pages
     * are taken a page at a time and a sliding-window layer gives back what falls out of its window as it goes (so
     * filling 128k positions of a windowed layer holds its window, not 128k positions); positions out of the final
     * window are not written at all.
     */
    public void appendRandom(Backend backend, int n, long seed) {
        if (length + n > capacity) throw new ContextOverflowException(length, n, capacity);
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int width = keys[0].width(), chunk = Math.min(n, KvStore.PAGE), end = length + n;
        float[] k = new float[chunk * width], v = new float[chunk * width];
        Tensor kt = backend.allocate(k.length), vt = backend.allocate(v.length);
        int[] positions = new int[chunk];
        KvStore[] ks = new KvStore[chunk], vs = new KvStore[chunk];
        for (int l = 0; l < keys.length; l++) {
            java.util.Arrays.fill(ks, keys[l]);
            java.util.Arrays.fill(vs, values[l]);
            int visible = cfg.attentionStart(l, end); // the first position the next token attends to
            for (int p = length; p < end; p += chunk) {
                int m = Math.min(chunk, end - p);
                if (!keys[l].reserve(p, p + m) || values[l] != null && !values[l].reserve(p, p + m)) {
                    KvPool.Stats s = pool.stats();
                    throw new KvBudgetExceededException(s.budget(), s.bytesInUse(), bytesFor(cfg, type, end) - bytes(), end - p);
                }
                if (p + m > visible) {
                    for (int j = 0; j < m; j++) {
                        positions[j] = p + j;
                        for (int i = 0; i < width; i++) k[j * width + i] = (float) r.nextGaussian();
                        for (int i = 0; i < width; i++) v[j * width + i] = (float) r.nextGaussian();
                    }
                    backend.write(kt, 0, k, 0, m * width);
                    if (values[l] == null) {
                        backend.appendKeys(m, kt, width, ks, positions);
                    } else {
                        backend.write(vt, 0, v, 0, m * width);
                        backend.appendKv(m, kt, vt, width, ks, vs, positions);
                    }
                }
                int start = cfg.attentionStart(l, p + m);
                if (start > 0) {
                    keys[l].releaseBefore(start);
                    if (values[l] != null) values[l].releaseBefore(start);
                }
            }
        }
        advance(n);
    }

    void advance(int n) {
        length += n;
        // The next token attends from attentionStart(l, length) on: whole pages before it are no longer needed.
        for (int l = 0; l < keys.length; l++) {
            int start = cfg.attentionStart(l, length);
            if (start > 0) {
                keys[l].releaseBefore(start);
                if (values[l] != null) values[l].releaseBefore(start);
            }
        }
    }

    /**
     * The most bytes a cache of {@code capacity} positions of {@code type} takes: keys and values of every layer
     * (latent attention's one store of rows), in whole pages; a sliding-window layer holds its window (which may
     * straddle one more page), not the context.
     */
    public static long bytesFor(ModelConfig cfg, KvType type, int capacity) {
        long pageBytes = KvPool.pageBytes(type, cfg.kvHeadCount(), cfg.headDim()), pages = 0;
        for (int l = 0; l < cfg.blockCount(); l++) {
            boolean windowed = cfg.arch().usesSlidingWindow(l) && cfg.slidingWindow() < capacity;
            int held = windowed ? cfg.slidingWindow() : capacity;
            pages += (held + KvStore.PAGE - 1) / KvStore.PAGE + (windowed ? 1 : 0);
        }
        return cfg.kvRowsPerToken() * pages * pageBytes;
    }

    /** The longest context, at most {@code limit} positions, whose cache ({@link #bytesFor}) fits in {@code bytes}. */
    public static int contextWithin(ModelConfig cfg, KvType type, long bytes, int limit) {
        if (bytesFor(cfg, type, limit) <= bytes) return limit;
        int lo = 0, hi = limit; // bytesFor(lo) fits, bytesFor(hi) does not
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (bytesFor(cfg, type, mid) <= bytes) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /** Bytes of the pages held by keys and values of all layers. */
    public long bytes() {
        long b = 0;
        for (int i = 0; i < keys.length; i++) b += keys[i].bytes() + (values[i] != null ? values[i].bytes() : 0);
        return b;
    }
}
