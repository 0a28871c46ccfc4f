package io.moe4j.kernels;

import java.lang.management.ManagementFactory;

/**
 * The memory that KV caches take their pages from, held against one byte budget, made by a backend
 * ({@link Backend#kvPool}) in its own memory (off-heap on the CPU, device memory on a GPU). When a page would exceed
 * the budget, {@link KvStore#reserve} answers false and the caller reports the exhaustion (the engine's error names
 * the budget), so running out is never an OutOfMemoryError. A page may be shared by several stores (a common prompt
 * prefix): it goes back to the pool when its last holder releases it.
 */
public interface KvPool {

    /** Physical memory of the machine (as the JVM sees it, container limits included). */
    static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }

    /** Bytes of one page of a store of {@code heads} heads of {@code headDim} values of {@code type}. */
    static long pageBytes(KvType type, int heads, int headDim) {
        return type.bytesFor(headDim) * heads * KvStore.PAGE;
    }

    /** An empty store of rows of {@code heads} heads of {@code headDim} values of {@code type}, with pages from this pool. */
    KvStore newStore(KvType type, int heads, int headDim);

    /** The byte budget. */
    long budget();

    /** Pages and bytes now. */
    Stats stats();

    /**
     * @param pagesInUse pages held by at least one store
     * @param pagesShared of those, pages held by more than one store
     * @param pagesFree  pages kept for reuse (their bytes count against the budget until dropped for other sizes)
     */
    record Stats(long budget, long bytesInUse, long bytesFree, int pagesInUse, int pagesShared, int pagesFree) {
    }
}
