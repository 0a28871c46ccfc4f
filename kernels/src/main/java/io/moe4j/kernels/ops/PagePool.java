package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvPool;

/** The page side of a {@link KvPool}: what a {@link KvBuffer} takes, shares and gives back. */
interface PagePool extends KvPool {
    /** A page of {@code bytes} bytes held once, or null when it does not fit in the budget. */
    KvPage tryAcquire(long bytes);

    /** A new page holding a copy of {@code page}'s bytes, held once; null when it does not fit in the budget. */
    KvPage tryCopy(KvPage page);

    /** How many stores hold {@code page}. */
    int holders(KvPage page);

    /** One more holder of {@code page} (a store that shares it). */
    void retain(KvPage page);

    /** One holder less; the page becomes free when none is left. */
    void release(KvPage page);
}
