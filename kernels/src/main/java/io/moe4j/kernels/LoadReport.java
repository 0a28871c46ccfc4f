package io.moe4j.kernels;

import java.nio.file.Path;

/**
 * What preparing a model's weights took ({@link WeightLoader#finish}).
 *
 * @param fromCache matrices read ready-made from a cache of prepared layouts (the CPU backend's layout cache)
 * @param prepared  matrices the backend prepared during this load (copied into its layout, or uploaded)
 * @param cacheFile the cache file this load read or wrote, or null when there is none
 */
public record LoadReport(int fromCache, int prepared, Path cacheFile) {
    public static final LoadReport NONE = new LoadReport(0, 0, null);
}
