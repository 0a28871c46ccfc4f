package io.moe4j.batch;

import io.moe4j.generate.StopReason;
import io.moe4j.generate.StopStrings;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.KvPool;
import io.moe4j.model.KvBudgetExceededException;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.kernels.ExpertCounts;
import io.moe4j.model.Transformer;
import io.moe4j.tokenizer.StreamingDecoder;
import io.moe4j.tokenizer.Tokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Continuous batching: up to {@code parallel} sequences generate together. Every step runs the next token of each
 * decoding sequence (and a chunk of the prompts still being evaluated) as ONE batch through the transformer, so
 * the weights are read once per step rather than once per sequence. New requests join between steps; requests
 * beyond the free slots wait in a bounded queue, beyond which {@link #submit} refuses them.
 *
 * <p>A sequence that finishes normally leaves its keys and values in the prompt cache. A new request shares the
 * pages of the longest common prefix it finds there or among the sequences generating now (a long system prompt
 * is then stored once, however many conversations start with it) and evaluates only the rest; a request that
 * extends a cached conversation (the usual multi-turn chat) takes its cache over. Full pages are shared by
 * reference; a page that two caches hold is copied when one of them writes into it. A cancelled or failed sequence
 * frees its memory. The prompt cache holds at most {@link #PROMPT_CACHE_ENTRIES} conversations, and gives the
 * least recently used ones up when the KV budget needs their pages.
 *
 * <p>KV pages come from one {@link KvPool}. Each step takes the pages its tokens need before running; when the
 * pool's budget has no room, conversations of the prompt cache are dropped (least recently used first), and if that
 * is not enough the sequence that asked fails with {@link KvBudgetExceededException} (the server answers 429) while
 * the others go on.
 *
 * <p>The transformer evaluates each token of a batch exactly as it would alone, so what a request generates does
 * not depend on what else runs beside it. One thread (the scheduler's) runs the model; listeners are called on it.
 */
public final class BatchScheduler implements AutoCloseable {
    /** Most prompt tokens evaluated per step (all prefilling sequences together), to bound the step latency. */
    public static final int DEFAULT_PREFILL_CHUNK = 256;
    /** Finished conversations the prompt cache keeps at most (their common prefixes share pages). */
    public static final int PROMPT_CACHE_ENTRIES = 64;

    private final Transformer transformer;
    private final Tokenizer tokenizer;
    private final int contextSize;
    private final KvType kvType;
    private final int queueCapacity;
    private final int prefillChunk;
    private final boolean promptCache;
    private final KvPool kvPool;
    private final Slot[] slots;
    /** The prompt cache: finished conversations, least recently used first. Scheduler thread only. */
    private final List<Entry> cached = new ArrayList<>();

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition wake = lock.newCondition();
    private final ArrayDeque<Seq> waiting = new ArrayDeque<>();
    private final List<Seq> active = new ArrayList<>();
    private volatile boolean closed;
    private boolean clearRequested;
    private final Thread thread;

    // Statistics (written by the scheduler thread, read by anyone).
    /** Expert selections of every step, counted by the backend (null for a dense model). */
    private final ExpertCounts expertCounts;
    private volatile long requestsFinished, requestsFailed;
    private final java.util.concurrent.atomic.LongAdder requestsCancelled = new java.util.concurrent.atomic.LongAdder();
    private volatile long promptTokensEvaluated, promptTokensCached, tokensGenerated, steps, busyNanos;
    private volatile long kvBytes, kvBytesActive;
    private volatile int activeCount;
    private long clock;

    /**
     * @param parallel      sequences that decode together (slots)
     * @param contextSize   KV capacity of every slot, in tokens
     * @param queueCapacity requests that may wait for a slot before {@link #submit} refuses more
     * @param promptCache   keep finished sequences' keys and values for reuse by later requests
     */
    public BatchScheduler(Transformer transformer, Tokenizer tokenizer, int parallel, int contextSize, KvType kvType,
                          int queueCapacity, boolean promptCache) {
        this(transformer, tokenizer, parallel, contextSize, kvType, queueCapacity, promptCache, DEFAULT_PREFILL_CHUNK);
    }

    public BatchScheduler(Transformer transformer, Tokenizer tokenizer, int parallel, int contextSize, KvType kvType,
                          int queueCapacity, boolean promptCache, int prefillChunk) {
        this(transformer, tokenizer, parallel, contextSize, kvType, queueCapacity, promptCache, prefillChunk,
                transformer.backend().kvPool(transformer.backend().defaultKvPool().budget()));
    }

    /** @param kvPool where the slots' KV pages come from (its budget bounds the memory of all of them) */
    public BatchScheduler(Transformer transformer, Tokenizer tokenizer, int parallel, int contextSize, KvType kvType,
                          int queueCapacity, boolean promptCache, int prefillChunk, KvPool kvPool) {
        if (parallel < 1) throw new IllegalArgumentException("parallel must be at least 1, got " + parallel);
        if (contextSize < 1) throw new IllegalArgumentException("context size must be positive, got " + contextSize);
        if (queueCapacity < 0) throw new IllegalArgumentException("queue capacity must be >= 0, got " + queueCapacity);
        if (prefillChunk < 1) throw new IllegalArgumentException("prefill chunk must be positive, got " + prefillChunk);
        this.transformer = transformer;
        this.tokenizer = tokenizer;
        this.contextSize = contextSize;
        this.kvType = kvType;
        this.queueCapacity = queueCapacity;
        this.prefillChunk = prefillChunk;
        this.promptCache = promptCache;
        this.kvPool = kvPool;
        this.slots = new Slot[parallel];
        for (int i = 0; i < parallel; i++) slots[i] = new Slot();
        ModelConfig cfg = transformer.config();
        this.expertCounts = transformer.newExpertCounts();
        this.thread = Thread.ofPlatform().name("moe4j-batch").daemon(true).unstarted(this::run);
        thread.start();
    }

    public int parallel() {
        return slots.length;
    }

    public int contextSize() {
        return contextSize;
    }

    public int queueCapacity() {
        return queueCapacity;
    }

    public KvPool kvPool() {
        return kvPool;
    }

    /**
     * Queues a request. Throws {@link QueueFullException} when every slot is busy and the queue is full, and
     * {@link IllegalArgumentException} when the prompt does not fit in the context.
     */
    public BatchHandle submit(BatchRequest request, BatchListener listener) {
        if (request.prompt().length > contextSize) {
            throw new IllegalArgumentException("the prompt is " + request.prompt().length + " tokens, more than the context of "
                    + contextSize + " tokens");
        }
        for (int id : request.prompt()) {
            if (id < 0 || id >= transformer.vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + transformer.vocabSize() + ")");
            }
        }
        Seq seq = new Seq(request, listener);
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("the scheduler is closed");
            int free = slots.length - activeCount; // active itself belongs to the scheduler thread
            if (waiting.size() >= queueCapacity + Math.max(0, free)) throw new QueueFullException(waiting.size());
            waiting.add(seq);
            wake.signalAll();
        } finally {
            lock.unlock();
        }
        return seq;
    }

    /** Requests waiting for a slot. */
    public int queueDepth() {
        lock.lock();
        try {
            return waiting.size();
        } finally {
            lock.unlock();
        }
    }

    /** Sequences generating now. */
    public int activeCount() {
        return activeCount;
    }

    /** Drops the prompt cache of idle slots (their memory is freed); returns once done. */
    public void clearPromptCache() {
        lock.lock();
        try {
            clearRequested = true;
            wake.signalAll();
            while (clearRequested && !closed) wake.awaitUninterruptibly();
        } finally {
            lock.unlock();
        }
    }

    public Stats stats() {
        long[][] experts = expertCounts != null ? expertCounts.snapshot() : new long[transformer.config().blockCount()][0];
        return new Stats(requestsFinished, requestsCancelled.sum(), requestsFailed, promptTokensEvaluated, promptTokensCached,
                tokensGenerated, steps, busyNanos, activeCount, queueDepth(), slots.length, kvBytes, kvBytesActive, experts);
    }

    /**
     * A snapshot of the scheduler's counters.
     *
     * @param promptTokensEvaluated prompt tokens run through the model
     * @param promptTokensCached    prompt tokens taken from the prompt cache instead
     * @param busyNanos             time spent in model steps
     * @param kvBytes               bytes of the KV pages in use (sequences generating now and the prompt cache; a
     *                              shared page once)
     * @param kvBytesActive         bytes of the pages of sequences generating now (a shared page for each holder)
     * @param expertSelections      per layer and expert, how many tokens were routed to it
     */
    public record Stats(long requestsFinished, long requestsCancelled, long requestsFailed, long promptTokensEvaluated,
                        long promptTokensCached, long tokensGenerated, long steps, long busyNanos, int active, int queued,
                        int slots, long kvBytes, long kvBytesActive, long[][] expertSelections) {
    }

    @Override
    public void close() {
        List<Seq> dropped;
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            dropped = new ArrayList<>(waiting);
            waiting.clear();
            wake.signalAll();
        } finally {
            lock.unlock();
        }
        for (Seq s : dropped) s.fail(new IllegalStateException("the scheduler was closed"));
        try {
            thread.join(TimeUnit.SECONDS.toMillis(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- the loop --------------------------------------------------------------------------------------------

    private void run() {
        while (true) {
            try {
                if (!admit()) break;
                if (!active.isEmpty()) step();
            } catch (RuntimeException | Error e) {
                // A step failed as a whole (a bug, or out of memory): fail the sequences in it, keep serving.
                for (Seq s : List.copyOf(active)) release(s, null, e instanceof RuntimeException re ? re : new IllegalStateException(e));
            }
        }
        for (Seq s : List.copyOf(active)) release(s, null, new IllegalStateException("the scheduler was closed"));
        for (Entry e : cached) e.cache.close();
        cached.clear();
        updateMemoryStats();
    }

    /** Moves waiting requests into free slots; blocks while there is nothing to do. False once closed. */
    private boolean admit() {
        List<Seq> started = new ArrayList<>();
        List<Seq> dropped = new ArrayList<>();
        lock.lock();
        try {
            while (!closed && active.isEmpty() && waiting.isEmpty() && !clearRequested) {
                try {
                    wake.await();
                } catch (InterruptedException e) {
                    return false;
                }
            }
            if (closed) return false;
            if (clearRequested) {
                for (Entry e : cached) e.cache.close();
                cached.clear();
                updateMemoryStats();
                clearRequested = false;
                wake.signalAll();
            }
            while (!waiting.isEmpty() && active.size() < slots.length) {
                Seq s = waiting.poll();
                if (s.cancelled) {
                    dropped.add(s);
                    continue;
                }
                assign(s);
                active.add(s);
                started.add(s);
            }
            activeCount = active.size();
        } finally {
            lock.unlock();
        }
        for (Seq s : dropped) s.finishCancelledUnstarted();
        for (Seq s : started) {
            promptTokensCached += s.cached;
            safely(() -> s.listener.onStart(s.req.prompt().length, s.cached));
        }
        return true;
    }

    /**
     * Gives {@code s} a free slot, with the pages of the longest prefix of its prompt that the prompt cache or a
     * sequence generating now holds.
     */
    private void assign(Seq s) {
        int[] prompt = s.req.prompt();
        Slot slot = null;
        for (Slot o : slots) if (o.seq == null && slot == null) slot = o;
        int max = prompt.length - 1; // at least one token must be evaluated for logits
        Entry fromEntry = null;
        KvCache from = null;
        int reuse = 0;
        if (promptCache) {
            for (Entry e : cached) {
                int r = e.cache.keepable(commonPrefix(e.tokens, e.tokens.length, prompt, max));
                if (r > reuse) {
                    reuse = r;
                    from = e.cache;
                    fromEntry = e;
                }
            }
            for (Slot o : slots) {
                if (o.seq == null || o.cache == null) continue;
                int r = o.cache.keepable(commonPrefix(o.tokens, o.length, prompt, max));
                if (r > reuse) {
                    reuse = r;
                    from = o.cache;
                    fromEntry = null;
                }
            }
        }
        if (fromEntry != null && reuse == fromEntry.cache.length()) {
            cached.remove(fromEntry); // the request extends this conversation: its cache becomes the request's
            slot.cache = fromEntry.cache;
        } else {
            slot.cache = new KvCache(transformer.config(), contextSize, kvType, kvPool);
            if (reuse > 0) slot.cache.shareFrom(from, reuse);
            if (fromEntry != null) fromEntry.lastUsed = ++clock;
        }
        slot.length = reuse;
        if (slot.tokens.length < prompt.length) slot.tokens = Arrays.copyOf(slot.tokens, Math.max(prompt.length, slot.tokens.length * 2));
        System.arraycopy(prompt, 0, slot.tokens, 0, prompt.length);
        slot.seq = s;
        s.slot = slot;
        s.cached = reuse;
        s.prefilled = reuse;
        s.admittedNanos = System.nanoTime();
    }

    private static int commonPrefix(int[] a, int aLength, int[] b, int max) {
        int n = 0, limit = Math.min(aLength, max);
        while (n < limit && a[n] == b[n]) n++;
        return n;
    }

    private void step() {
        // Cancelled sequences leave first.
        for (Seq s : List.copyOf(active)) {
            if (s.cancelled) release(s, StopReason.CANCELLED, null);
        }
        if (active.isEmpty()) return;
        List<Transformer.SequenceInput> inputs = new ArrayList<>(active.size());
        List<Seq> members = new ArrayList<>(active.size());
        int budget = prefillChunk;
        for (Seq s : List.copyOf(active)) {
            int[] prompt = s.req.prompt();
            int[] tokens;
            if (s.prefilled < prompt.length) {
                if (budget == 0) continue;
                int n = Math.min(budget, prompt.length - s.prefilled);
                tokens = Arrays.copyOfRange(prompt, s.prefilled, s.prefilled + n);
            } else {
                tokens = new int[] {s.next};
            }
            if (!reserve(s, tokens.length)) continue;
            if (s.prefilled < prompt.length) budget -= tokens.length;
            inputs.add(new Transformer.SequenceInput(s.slot.cache, tokens, false));
            s.stepTokens = tokens.length;
            members.add(s);
        }
        if (members.isEmpty()) return;
        long t0 = System.nanoTime();
        float[][] logits = transformer.forward(inputs, expertCounts, null);
        busyNanos += System.nanoTime() - t0;
        steps++;
        for (int i = 0; i < members.size(); i++) {
            Seq s = members.get(i);
            Slot slot = s.slot;
            int[] fed = inputs.get(i).tokens();
            if (slot.tokens.length < slot.length + fed.length) slot.tokens = Arrays.copyOf(slot.tokens, Math.max(slot.length + fed.length, slot.tokens.length * 2));
            System.arraycopy(fed, 0, slot.tokens, slot.length, fed.length);
            slot.length += fed.length;
            if (s.prefilled < s.req.prompt().length) {
                s.prefilled += fed.length;
                promptTokensEvaluated += fed.length;
                if (s.prefilled < s.req.prompt().length) continue; // more of the prompt to go
                s.firstTokenNanos = System.nanoTime();
            }
            try {
                advance(s, logits[i]);
            } catch (RuntimeException e) {
                release(s, null, e);
            }
        }
        updateMemoryStats();
    }

    /**
     * Takes the KV pages of {@code n} more tokens of {@code s}, dropping prompt cache entries (least recently used
     * first) while the budget has no room. False when even that is not enough: {@code s} has then failed.
     */
    private boolean reserve(Seq s, int n) {
        while (true) {
            try {
                s.slot.cache.reserve(n);
                return true;
            } catch (KvBudgetExceededException e) {
                if (cached.isEmpty()) {
                    release(s, null, e);
                    return false;
                }
                evictLeastRecentlyUsed();
            }
        }
    }

    /** One iteration of the generation loop after the model produced {@code logits} for sequence {@code s}. */
    private void advance(Seq s, float[] logits) {
        BatchRequest r = s.req;
        if (s.count >= r.maxTokens()) {
            release(s, StopReason.MAX_TOKENS, null);
            return;
        }
        if (s.cancelled) {
            release(s, StopReason.CANCELLED, null);
            return;
        }
        float[] raw = r.topLogprobs() >= 0 ? logits.clone() : null;
        int next = r.sampler().sample(logits, s.slot.tokens, s.slot.length);
        if (tokenizer.isEndOfGeneration(next)) {
            release(s, StopReason.END_OF_GENERATION, null);
            return;
        }
        s.count++;
        tokensGenerated++;
        String piece = s.stops.accept(s.decoder.accept(next));
        TokenEvent event = raw == null ? new TokenEvent(next, piece, s.count - 1, Float.NaN, EMPTY_IDS, EMPTY_LP)
                : logprobEvent(next, piece, s.count - 1, raw, r.topLogprobs());
        safely(() -> s.listener.onToken(event));
        if (s.stops.stopped()) {
            release(s, StopReason.STOP_STRING, null);
        } else if (s.count >= r.maxTokens()) {
            release(s, StopReason.MAX_TOKENS, null);
        } else if (s.slot.cache.length() >= s.slot.cache.capacity()) {
            release(s, StopReason.CONTEXT_FULL, null);
        } else {
            s.next = next;
        }
    }

    private static final int[] EMPTY_IDS = new int[0];
    private static final float[] EMPTY_LP = new float[0];

    static TokenEvent logprobEvent(int id, String text, int index, float[] logits, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) max = Math.max(max, v);
        double sum = 0;
        for (float v : logits) sum += Math.exp(v - max);
        double logZ = max + Math.log(sum);
        int[] ids = new int[top];
        float[] lps = new float[top];
        if (top > 0) {
            // Partial selection of the `top` largest logits (ties: lower id first).
            int n = 0;
            for (int i = 0; i < logits.length; i++) {
                if (n < top) {
                    int j = n++;
                    while (j > 0 && logits[ids[j - 1]] < logits[i]) {
                        ids[j] = ids[j - 1];
                        j--;
                    }
                    ids[j] = i;
                } else if (logits[i] > logits[ids[top - 1]]) {
                    int j = top - 1;
                    while (j > 0 && logits[ids[j - 1]] < logits[i]) {
                        ids[j] = ids[j - 1];
                        j--;
                    }
                    ids[j] = i;
                }
            }
            for (int k = 0; k < top; k++) lps[k] = (float) (logits[ids[k]] - logZ);
        }
        return new TokenEvent(id, text, index, (float) (logits[id] - logZ), ids, lps);
    }

    /** Ends {@code s} (with a reason, or with an error) and frees or keeps its slot. */
    private void release(Seq s, StopReason reason, RuntimeException error) {
        active.remove(s);
        try {
            finish(s, reason, error);
        } finally {
            // Published last: whoever sees the new count also sees the freed memory and the counters.
            activeCount = active.size();
        }
    }

    private void finish(Seq s, StopReason reason, RuntimeException error) {
        Slot slot = s.slot;
        if (slot != null) {
            slot.seq = null;
            if (reason == null || reason == StopReason.CANCELLED || !promptCache) slot.free();
            else keep(slot);
        }
        updateMemoryStats();
        long now = System.nanoTime();
        if (error != null) {
            requestsFailed++;
            s.fail(error);
            return;
        }
        if (reason == StopReason.CANCELLED) requestsCancelled.increment();
        else requestsFinished++;
        if (!s.stops.stopped()) {
            String tail = s.stops.accept(s.decoder.flush()) + s.stops.flush();
            if (!tail.isEmpty()) {
                TokenEvent event = new TokenEvent(-1, tail, s.count, Float.NaN, EMPTY_IDS, EMPTY_LP);
                safely(() -> s.listener.onToken(event));
            }
        }
        long first = s.firstTokenNanos != 0 ? s.firstTokenNanos : now;
        BatchResult result = new BatchResult(reason, s.req.prompt().length, s.cached, s.count,
                s.admittedNanos - s.submittedNanos, first - s.admittedNanos, now - first);
        s.finish(result);
    }

    /** Moves the finished conversation of {@code slot} into the prompt cache; the slot is free afterwards. */
    private void keep(Slot slot) {
        int[] tokens = Arrays.copyOf(slot.tokens, slot.length);
        // A cached conversation that this one extends is redundant: its pages are (mostly) this one's too.
        cached.removeIf(e -> {
            boolean prefix = e.tokens.length <= tokens.length && Arrays.equals(e.tokens, 0, e.tokens.length, tokens, 0, e.tokens.length);
            if (prefix) e.cache.close();
            return prefix;
        });
        Entry e = new Entry(slot.cache, tokens);
        e.lastUsed = ++clock;
        cached.add(e);
        slot.cache = null;
        slot.length = 0;
        while (cached.size() > PROMPT_CACHE_ENTRIES) evictLeastRecentlyUsed();
    }

    private void evictLeastRecentlyUsed() {
        Entry lru = null;
        for (Entry e : cached) if (lru == null || e.lastUsed < lru.lastUsed) lru = e;
        cached.remove(lru);
        lru.cache.close();
    }


    private void updateMemoryStats() {
        long act = 0;
        for (Slot s : slots) {
            if (s.cache != null && s.seq != null) act += s.cache.bytes();
        }
        kvBytes = kvPool.stats().bytesInUse();
        kvBytesActive = act;
    }

    private static void safely(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            // A listener's failure must not stop the other sequences.
        }
    }

    // ---- state -----------------------------------------------------------------------------------------------

    /** A conversation of the prompt cache: its tokens and the cache that holds them. */
    private static final class Entry {
        final KvCache cache;
        final int[] tokens;
        long lastUsed;

        Entry(KvCache cache, int[] tokens) {
            this.cache = cache;
            this.tokens = tokens;
        }
    }

    /** Where a sequence generating now keeps its cache and tokens. */
    private static final class Slot {
        KvCache cache;
        int[] tokens = new int[64];
        int length;
        Seq seq;

        void free() {
            if (cache != null) cache.close();
            cache = null;
            length = 0;
        }
    }

    private final class Seq implements BatchHandle {
        final BatchRequest req;
        final BatchListener listener;
        final StreamingDecoder decoder;
        final StopStrings stops;
        final long submittedNanos = System.nanoTime();
        long admittedNanos, firstTokenNanos;
        volatile boolean cancelled;
        private boolean done;
        Slot slot;
        int cached, prefilled, count, next, stepTokens;

        Seq(BatchRequest req, BatchListener listener) {
            this.req = req;
            this.listener = listener;
            this.decoder = new StreamingDecoder(tokenizer, req.renderSpecial());
            this.stops = new StopStrings(req.stop());
        }

        @Override
        public void cancel() {
            cancelled = true;
            boolean removed;
            lock.lock();
            try {
                removed = waiting.remove(this);
                wake.signalAll();
            } finally {
                lock.unlock();
            }
            if (removed) finishCancelledUnstarted();
        }

        @Override
        public boolean isCancelled() {
            return cancelled;
        }

        void finishCancelledUnstarted() {
            requestsCancelled.increment();
            long now = System.nanoTime();
            finish(new BatchResult(StopReason.CANCELLED, req.prompt().length, 0, 0, now - submittedNanos, 0, 0));
        }

        synchronized void finish(BatchResult r) {
            if (done) return;
            done = true;
            safely(() -> listener.onFinish(r));
        }

        synchronized void fail(RuntimeException e) {
            if (done) return;
            done = true;
            safely(() -> listener.onError(e));
        }
    }
}
