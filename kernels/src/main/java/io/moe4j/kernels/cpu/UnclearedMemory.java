package io.moe4j.kernels.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Off-heap memory that the caller fills entirely itself (the interleaved copies of the weights): from the C
 * library's {@code malloc}, which {@link Arena#allocate} also uses, but without the clearing {@link Arena#allocate}
 * does on the calling thread. Why: clearing gigabytes on one thread, page faults included, was 2-5 s of loading a
 * 4 GB Q4_K_M model; uncleared, the pages are faulted in by the threads that fill them. The start is aligned to 64
 * bytes as {@code Arena.allocate(bytes, 64)} aligns it, so the addresses (to which decode speed proved sensitive,
 * see docs/performance.md) are the same. Without native access ({@code --enable-native-access}) this falls back to
 * {@link Arena#allocate}.
 */
public final class UnclearedMemory {
    private UnclearedMemory() {
    }

    private static final long ALIGN = 64;
    /** malloc and free; null where native access is not enabled or there is no C library. */
    private static final MethodHandle MALLOC, FREE;

    static {
        MethodHandle malloc = null, free = null;
        if (UnclearedMemory.class.getModule().isNativeAccessEnabled() && !"false".equals(System.getProperty("moe4j.unclearedMemory"))) {
            try {
                Linker linker = Linker.nativeLinker();
                malloc = linker.downcallHandle(linker.defaultLookup().find("malloc").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
                free = linker.downcallHandle(linker.defaultLookup().find("free").orElseThrow(),
                        FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG));
            } catch (RuntimeException | LinkageError e) {
                malloc = free = null; // no C library to call: Arena.allocate
            }
        }
        MALLOC = malloc;
        FREE = free;
    }

    /**
     * {@code bytes} of memory with undefined contents, 64-byte aligned, freed when {@code arena} is closed. The caller
     * must write every byte before reading any.
     */
    public static MemorySegment allocate(long bytes, Arena arena) {
        if (MALLOC == null) return arena.allocate(bytes, ALIGN);
        long base;
        try {
            base = (long) MALLOC.invokeExact(bytes + ALIGN - 1);
        } catch (Throwable e) {
            throw new IllegalStateException("malloc of " + bytes + " bytes failed", e);
        }
        if (base == 0) return arena.allocate(bytes, ALIGN); // out of memory: let the JDK report it in its words
        long start = (base + ALIGN - 1) & -ALIGN;
        return MemorySegment.ofAddress(start).reinterpret(bytes, arena, unused -> free(base));
    }

    private static void free(long base) {
        try {
            FREE.invokeExact(base);
        } catch (Throwable e) {
            throw new IllegalStateException("free failed", e);
        }
    }
}
