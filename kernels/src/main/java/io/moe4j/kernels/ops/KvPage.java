package io.moe4j.kernels.ops;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** One page of a {@link KvPool}: {@code bytes} bytes of off-heap memory and its holders, counted by the pool. */
public final class KvPage {
    final Arena arena;
    final MemorySegment memory;
    final long bytes;
    /** Holders; guarded by the pool. */
    int refs;

    KvPage(Arena arena, MemorySegment memory) {
        this.arena = arena;
        this.memory = memory;
        this.bytes = memory.byteSize();
    }

    public long bytes() {
        return bytes;
    }
}
