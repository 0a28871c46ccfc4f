package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;

import java.lang.foreign.Arena;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link KvPool} over off-heap memory: every page is its own shared arena (so that a page can be freed on its
 * own), 64-byte aligned for the vector loads of the attention kernels. Released pages are kept for reuse by the
 * next cache that needs a page of the same size; they are freed when a page of another size would not fit
 * beside them.
 */
public final class CpuKvPool implements PagePool {
    /** Left to the rest of the process by the default budget of {@link #shared()}. */
    private static final long MARGIN = 1L << 30;
    static final CpuKvPool SHARED = new CpuKvPool(Math.max(MARGIN, KvPool.physicalMemory() - MARGIN));

    private final long budget;
    private final Map<Long, ArrayDeque<KvPage>> free = new HashMap<>();
    private long bytesInUse, bytesFree;
    private int pagesInUse, pagesShared, pagesFree;

    CpuKvPool(long budget) {
        if (budget <= 0) throw new IllegalArgumentException("a KV budget must be positive, got " + budget + " bytes");
        this.budget = budget;
    }

    /** A pool holding at most {@code budget} bytes of pages. */
    public static CpuKvPool of(long budget) {
        return new CpuKvPool(budget);
    }

    /** The pool of caches made without one: the machine's physical memory less a margin. */
    public static CpuKvPool shared() {
        return SHARED;
    }

    @Override
    public KvStore newStore(KvType type, int heads, int headDim) {
        return KvBuffer.create(type, heads, headDim, this);
    }

    @Override
    public long budget() {
        return budget;
    }

    @Override
    public synchronized KvPage tryAcquire(long bytes) {
        if (bytes <= 0) throw new IllegalArgumentException("a page must have bytes, got " + bytes);
        ArrayDeque<KvPage> same = free.get(bytes);
        KvPage page = same == null ? null : same.poll();
        if (page != null) {
            bytesFree -= bytes;
            pagesFree--;
        } else {
            if (bytesInUse + bytes > budget) return null;
            // Free pages of other sizes make room before the budget is declared exhausted.
            for (var it = free.values().iterator(); bytesInUse + bytesFree + bytes > budget && it.hasNext(); ) {
                ArrayDeque<KvPage> q = it.next();
                while (!q.isEmpty() && bytesInUse + bytesFree + bytes > budget) drop(q.poll());
            }
            Arena arena = Arena.ofShared();
            page = new KvPage(arena, arena.allocate(bytes, 64));
        }
        page.refs = 1;
        bytesInUse += bytes;
        pagesInUse++;
        return page;
    }

    @Override
    public KvPage tryCopy(KvPage page) {
        KvPage copy = tryAcquire(page.bytes);
        if (copy != null) copy.memory.copyFrom(page.memory);
        return copy;
    }

    @Override
    public synchronized int holders(KvPage page) {
        return page.refs;
    }

    private void drop(KvPage p) {
        bytesFree -= p.bytes;
        pagesFree--;
        p.arena.close();
    }

    @Override
    public synchronized void retain(KvPage page) {
        if (page.refs <= 0) throw new IllegalStateException("the page was already released");
        if (page.refs++ == 1) pagesShared++;
    }

    @Override
    public synchronized void release(KvPage page) {
        if (page.refs <= 0) throw new IllegalStateException("the page was already released");
        if (--page.refs == 1) pagesShared--;
        if (page.refs > 0) return;
        bytesInUse -= page.bytes;
        pagesInUse--;
        free.computeIfAbsent(page.bytes, k -> new ArrayDeque<>()).push(page);
        bytesFree += page.bytes;
        pagesFree++;
    }

    @Override
    public synchronized Stats stats() {
        return new Stats(budget, bytesInUse, bytesFree, pagesInUse, pagesShared, pagesFree);
    }
}
