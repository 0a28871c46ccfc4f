package io.moe4j.kernels.ops;

/**
 * Where the pages of KV caches come from: fixed-size blocks of memory that a {@link KvBuffer} takes as its sequence
 * grows and gives back when positions are dropped or the cache is closed. The pool holds every page against one
 * byte budget; when a page would exceed it, {@link #tryAcquire} answers null and the caller reports the exhaustion
 * (the engine's error names the budget), so running out is never an OutOfMemoryError.
 *
 * <p>The CPU pool ({@link #cpu}) keeps pages in off-heap memory (FFM); a device backend implements the same
 * interface over device memory. A page may be shared by several caches (a common prompt prefix): it is reference
 * counted and goes back to the pool when its last holder releases it.
 */
public interface KvPool {
    /** A pool of off-heap pages holding at most {@code budgetBytes} in all (pages in use and pages kept free). */
    static KvPool cpu(long budgetBytes) {
        return new CpuKvPool(budgetBytes);
    }

    /**
     * The pool for caches created without one (tests, tools): budgeted at the machine's physical memory less a
     * margin, which is what the Java heap would otherwise have met.
     */
    static KvPool shared() {
        return CpuKvPool.SHARED;
    }

    /** Physical memory of the machine (as the JVM sees it, container limits included). */
    static long physicalMemory() {
        return CpuKvPool.physicalMemory();
    }

    /** The byte budget. */
    long budget();

    /** A page of {@code bytes} bytes held once, or null when it does not fit in the budget. */
    KvPage tryAcquire(long bytes);

    /** A new page holding a copy of {@code page}'s bytes, held once; null when it does not fit in the budget. */
    KvPage tryCopy(KvPage page);

    /** How many caches hold {@code page}. */
    int holders(KvPage page);

    /** One more holder of {@code page} (a cache that shares it). */
    void retain(KvPage page);

    /** One holder less; the page becomes free when none is left. */
    void release(KvPage page);

    /** Pages and bytes now. */
    Stats stats();

    /**
     * @param pagesInUse pages held by at least one cache
     * @param pagesShared of those, pages held by more than one cache
     * @param pagesFree  pages kept for reuse (their bytes count against the budget until dropped for other sizes)
     */
    record Stats(long budget, long bytesInUse, long bytesFree, int pagesInUse, int pagesShared, int pagesFree) {
    }
}
