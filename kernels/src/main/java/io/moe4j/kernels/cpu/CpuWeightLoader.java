package io.moe4j.kernels.cpu;

import io.moe4j.kernels.LoadReport;
import io.moe4j.kernels.ModelSource;
import io.moe4j.kernels.Tensor;
import io.moe4j.kernels.Weight;
import io.moe4j.kernels.WeightLoader;
import io.moe4j.kernels.WeightMatrix;

/**
 * Weights for the CPU backend: multiplied matrices copied into their type's interleaved layout where it has one
 * ({@link CpuMatrix#interleave}), through the {@link LayoutCache} when one is configured, into memory tied to the
 * model file's arena; tables read in place from the mapping; vectors decoded to arrays.
 */
final class CpuWeightLoader implements WeightLoader {
    /**
     * Whether matrices get the interleaved layout where their type has one; {@code -Dmoe4j.interleave=false} keeps
     * every matrix in the file mapping.
     */
    static final boolean INTERLEAVE = !"false".equals(System.getProperty("moe4j.interleave"));

    private final ModelSource source;
    private final LayoutCache cache;

    private int prepared;

    /** @param layoutCache the folder of the layout cache, or null for none */
    CpuWeightLoader(ModelSource source, java.nio.file.Path layoutCache) {
        this.source = source;
        this.cache = INTERLEAVE ? LayoutCache.open(source, layoutCache) : null;
    }

    @Override
    public Weight matrix(WeightMatrix m, int sliceRows) {
        CpuMatrix c = CpuMatrix.of(m);
        if (!INTERLEAVE) return c;
        if (cache != null) return cache.interleave(c, sliceRows);
        CpuMatrix w = c.interleave(sliceRows, source.arena());
        if (w != c) prepared++;
        return w;
    }

    @Override
    public Weight table(WeightMatrix m) {
        return CpuMatrix.of(m);
    }

    @Override
    public Tensor vector(WeightMatrix m) {
        float[] out = new float[m.rows() * m.cols()];
        CpuMatrix c = CpuMatrix.of(m);
        for (int r = 0; r < m.rows(); r++) MatMul.row(c, r, out, r * m.cols());
        return new CpuTensor(out);
    }

    @Override
    public LoadReport finish() {
        if (cache == null) return new LoadReport(0, prepared, null);
        cache.finish();
        return new LoadReport(cache.hits(), cache.misses(), cache.file());
    }
}
