package io.moe4j.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A model file as a {@link Backend} prepares weights from it.
 *
 * @param path      the file (its name, size and modification time key the CPU backend's layout cache)
 * @param mapping   the whole file, memory-mapped
 * @param dataStart where the tensor data starts in the mapping
 * @param arena     the arena the mapping belongs to: memory a backend allocates for the model's weights is tied to
 *                  it, so closing the model frees both
 */
public record ModelSource(Path path, MemorySegment mapping, long dataStart, Arena arena) {
}
