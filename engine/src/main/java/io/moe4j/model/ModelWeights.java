package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.cpu.MatMul;
import io.moe4j.kernels.WeightMatrix;
import io.moe4j.kernels.quant.InterleavedFormat;
import io.moe4j.kernels.FeedForwardWeights;

import java.util.Arrays;

/**
 * The tensors of a model, looked up by llama.cpp's GGUF names and checked against the hyper-parameters. Matrices
 * stay in the file mapping, but for the types whose kernels have an interleaved layout (Q4_0, Q4_K, Q8_0, Q6_K, MXFP4),
 * copied into it at load time; only small vectors (norms, biases, sinks) are decoded to float arrays.
 */
public final class ModelWeights {

    public record Layer(
            float[] attnNorm,
            WeightMatrix wq, WeightMatrix wk, WeightMatrix wv, WeightMatrix wo,
            float[] bq, float[] bk, float[] bv, float[] bo,
            float[] qNorm, float[] kNorm,
            float[] sinks,
            float[] ffnNorm,
            FeedForwardWeights dense,
            WeightMatrix router, float[] routerBias,
            FeedForwardWeights experts,
            FeedForwardWeights sharedExpert, float[] sharedExpertGate) {
    }

    public final WeightMatrix tokenEmbedding;
    public final float[] outputNorm;
    public final WeightMatrix output;
    /** Per-pair RoPE frequency divisors (rope_freqs.weight, Llama 3.1 style), or null. */
    public final float[] ropeFreqFactors;
    public final Layer[] layers;
    public final int vocabSize;
    /** The layout cache this load used (what it mapped and what it copied), or null. */
    final LayoutCache layoutCache;

    public ModelWeights(GgufFile file, ModelConfig cfg) {
        this(file, cfg, LoadProgress.NONE);
    }

    /** As {@link #ModelWeights(GgufFile, ModelConfig)}, telling {@code progress} how far it has come. */
    public ModelWeights(GgufFile file, ModelConfig cfg, LoadProgress progress) {
        this(file, cfg, LayoutCache.configuredDirectory(), progress);
    }

    /** The folder of the layout cache that loads use ({@code moe4j.layoutCache}, {@code MOE4J_LAYOUT_CACHE}), or null. */
    public static java.nio.file.Path layoutCacheDirectory() {
        return INTERLEAVE ? LayoutCache.configuredDirectory() : null;
    }

    /**
     * With the interleaved matrices kept in (or mapped from) a {@link LayoutCache} in {@code layoutCache}; null:
     * copied in memory only.
     */
    ModelWeights(GgufFile file, ModelConfig cfg, java.nio.file.Path layoutCache, LoadProgress progress) {
        this.layoutCache = INTERLEAVE ? LayoutCache.open(file, layoutCache) : null;
        Loader l = new Loader(file, this.layoutCache, progress);
        int nEmbd = cfg.embeddingLength();
        GgufTensor emb = file.requireTensor("token_embd.weight");
        this.vocabSize = (int) emb.dim(1);
        this.tokenEmbedding = l.table("token_embd.weight", nEmbd, vocabSize);
        this.outputNorm = l.vector("output_norm.weight", nEmbd);
        // The embedding is only looked up by rows; as the (tied) output head it is multiplied, so that copy is interleaved.
        this.output = file.tensor("output.weight") != null ? l.matrix("output.weight", nEmbd, vocabSize) : l.interleave(tokenEmbedding);
        this.ropeFreqFactors = l.optionalVector("rope_freqs.weight", cfg.ropeDim() / 2);
        this.layers = new Layer[cfg.blockCount()];
        Architecture arch = cfg.arch();
        int q = cfg.qDim(), kv = cfg.kvDim();
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            float[] qNorm = null, kNorm = null;
            switch (arch.qkNorm()) {
                case PER_HEAD -> {
                    qNorm = l.vector(b + "attn_q_norm.weight", cfg.headDim());
                    kNorm = l.vector(b + "attn_k_norm.weight", cfg.headDim());
                }
                case WHOLE -> {
                    qNorm = l.vector(b + "attn_q_norm.weight", q);
                    kNorm = l.vector(b + "attn_k_norm.weight", kv);
                }
                case NONE -> {
                }
            }
            FeedForwardWeights dense = null, experts = null, shared = null;
            WeightMatrix router = null;
            float[] routerBias = null, sharedGate = null;
            if (cfg.isMoe()) {
                router = l.matrix(b + "ffn_gate_inp.weight", nEmbd, cfg.expertCount());
                routerBias = l.optionalVector(b + "ffn_gate_inp.bias", cfg.expertCount());
                experts = l.experts(b, "_exps", nEmbd, cfg.expertCount());
                if (file.tensor(b + "ffn_gate_shexp.weight") != null) {
                    shared = l.experts(b, "_shexp", nEmbd, 1);
                    sharedGate = l.optionalVector(b + "ffn_gate_inp_shexp.weight", nEmbd);
                }
            } else {
                dense = l.experts(b, "", nEmbd, 1);
            }
            layers[i] = new Layer(
                    l.vector(b + "attn_norm.weight", nEmbd),
                    l.matrix(b + "attn_q.weight", nEmbd, q),
                    l.matrix(b + "attn_k.weight", nEmbd, kv),
                    l.matrix(b + "attn_v.weight", nEmbd, kv),
                    l.matrix(b + "attn_output.weight", q, nEmbd),
                    l.optionalVector(b + "attn_q.bias", q),
                    l.optionalVector(b + "attn_k.bias", kv),
                    l.optionalVector(b + "attn_v.bias", kv),
                    l.optionalVector(b + "attn_output.bias", nEmbd),
                    qNorm, kNorm,
                    l.optionalVector(b + "attn_sinks.weight", cfg.headCount()),
                    l.vector(b + arch.ffnNormTensor() + ".weight", nEmbd),
                    dense, router, routerBias, experts, shared, sharedGate);
        }
        l.finish();
    }

    /**
     * Whether matrices get the kernels' interleaved layout where their type has one (a copy, made at load time, that
     * decodes faster: see {@link WeightMatrix#interleave}); {@code -Dmoe4j.interleave=false} keeps every matrix in
     * the file mapping.
     */
    static final boolean INTERLEAVE = !"false".equals(System.getProperty("moe4j.interleave"));

    /**
     * Looks tensors up by name and checks their shapes; errors name the file, tensor, expected and actual shape.
     * Multiplied matrices (not the embedding table) are interleaved ({@link #INTERLEAVE}) into memory that the file
     * owns, so closing the model frees it.
     */
    private static final class Loader {
        private final GgufFile file;
        /** Where interleaved matrices are kept between loads; null: copied in memory at every load. */
        private final LayoutCache cache;
        private final LoadProgress progress;
        /** Bytes of the file's tensors, and of the matrices made ready so far (the slow part of a load). */
        private final long total;
        private long done;

        Loader(GgufFile file, LayoutCache cache, LoadProgress progress) {
            this.file = file;
            this.cache = cache;
            this.progress = progress;
            this.total = file.tensors().values().stream().mapToLong(GgufTensor::byteSize).sum();
        }

        /** {@code m} interleaved if it can be, to be cut later (into experts) at multiples of {@code sliceRows}. */
        WeightMatrix interleave(WeightMatrix m, int sliceRows) {
            if (!INTERLEAVE) return m;
            WeightMatrix w = cache != null ? cache.interleave(m, sliceRows) : m.interleave(sliceRows, file.arena());
            done = Math.min(total, done + m.byteSize());
            progress.loaded(done, total);
            return w;
        }

        /** {@code m} interleaved if it can be (never cut). */
        WeightMatrix interleave(WeightMatrix m) {
            return interleave(m, InterleavedFormat.ROWS);
        }

        /** After the last matrix: lets the layout cache write what this load copied. */
        void finish() {
            if (cache != null) cache.finish();
            progress.loaded(total, total);
        }

        private GgufTensor shaped(String name, long... dims) {
            GgufTensor t = file.requireTensor(name);
            long[] actual = t.dims();
            // ggml drops trailing dimensions of size 1 (e.g. a [n, 1] tensor may be stored as [n]).
            int rank = dims.length;
            while (rank > 1 && dims[rank - 1] == 1) rank--;
            int arank = actual.length;
            while (arank > 1 && actual[arank - 1] == 1) arank--;
            if (rank != arank || !Arrays.equals(Arrays.copyOf(dims, rank), Arrays.copyOf(actual, arank))) {
                throw new ModelFormatException(file.path() + ": tensor '" + name + "' has shape " + Arrays.toString(actual)
                        + ", expected " + Arrays.toString(dims) + " from the model's hyper-parameters");
            }
            if (!t.type().supported) {
                throw new ModelFormatException(file.path() + ": tensor '" + name + "' has type " + t.type()
                        + ", which moe4j does not support (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4)");
            }
            return t;
        }

        /** A matrix that is multiplied (interleaved where it can be). */
        WeightMatrix matrix(String name, int cols, int rows) {
            return interleave(table(name, cols, rows));
        }

        /** A matrix in the file's layout (the embedding table: only single rows are read). */
        WeightMatrix table(String name, int cols, int rows) {
            GgufTensor t = shaped(name, cols, rows);
            return new WeightMatrix(t.data(), t.type(), rows, cols);
        }

        float[] vector(String name, int n) {
            GgufTensor t = shaped(name, n);
            return decode(t, n);
        }

        float[] optionalVector(String name, int n) {
            return file.tensor(name) == null ? null : vector(name, n);
        }

        /** gate/up/down (+ optional biases) of {@code count} experts whose hidden size is read off the gate tensor. */
        FeedForwardWeights experts(String prefix, String suffix, int nEmbd, int count) {
            String gateName = prefix + "ffn_gate" + suffix + ".weight";
            GgufTensor gate = file.requireTensor(gateName);
            int hidden = (int) gate.dim(1);
            if (hidden <= 0) throw new ModelFormatException(file.path() + ": tensor '" + gateName + "' has no hidden dimension");
            long[] upDims = count == 1 && suffix.isEmpty() ? new long[]{nEmbd, hidden} : new long[]{nEmbd, hidden, count};
            long[] downDims = count == 1 && suffix.isEmpty() ? new long[]{hidden, nEmbd} : new long[]{hidden, nEmbd, count};
            GgufTensor g = shaped(gateName, upDims);
            GgufTensor u = shaped(prefix + "ffn_up" + suffix + ".weight", upDims);
            GgufTensor d = shaped(prefix + "ffn_down" + suffix + ".weight", downDims);
            return new FeedForwardWeights(
                    interleave(new WeightMatrix(g.data(), g.type(), hidden * count, nEmbd), hidden),
                    interleave(new WeightMatrix(u.data(), u.type(), hidden * count, nEmbd), hidden),
                    interleave(new WeightMatrix(d.data(), d.type(), nEmbd * count, hidden), nEmbd),
                    optionalStacked(prefix + "ffn_gate" + suffix + ".bias", hidden, count),
                    optionalStacked(prefix + "ffn_up" + suffix + ".bias", hidden, count),
                    optionalStacked(prefix + "ffn_down" + suffix + ".bias", nEmbd, count),
                    hidden);
        }

        private float[] optionalStacked(String name, int n, int count) {
            if (file.tensor(name) == null) return null;
            return decode(shaped(name, n, count), n * count);
        }

        private float[] decode(GgufTensor t, int n) {
            float[] out = new float[n];
            MatMul.row(new WeightMatrix(t.data(), t.type(), 1, n), 0, out, 0);
            return out;
        }
    }
}
