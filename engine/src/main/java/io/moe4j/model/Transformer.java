package io.moe4j.model;

import io.moe4j.kernels.MatMul;
import io.moe4j.kernels.Parallel;
import io.moe4j.kernels.ops.Attention;
import io.moe4j.kernels.ops.RmsNorm;
import io.moe4j.kernels.ops.Rope;

/**
 * The decoder forward pass shared by every architecture: embedding, then per block attention and a dense or
 * sparse feed-forward network, each behind an RMSNorm and added to the residual stream; then the output head.
 * Architecture differences are switches of {@link Architecture} and optional tensors of {@link ModelWeights}.
 */
public final class Transformer {
    private final ModelConfig cfg;
    private final ModelWeights w;
    private final Rope rope;

    public Transformer(ModelConfig cfg, ModelWeights weights) {
        this.cfg = cfg;
        this.w = weights;
        this.rope = cfg.rope(weights.ropeFreqFactors);
    }

    /** Reads architecture, hyper-parameters and weights of an open GGUF file (the mapping must stay open). */
    public static Transformer of(io.moe4j.gguf.GgufFile file) {
        var md = file.metadata();
        Architecture arch = io.moe4j.model.arch.Architectures.byName(md.getString("general.architecture"), md.source());
        ModelConfig cfg = ModelConfig.from(md, arch);
        return new Transformer(cfg, new ModelWeights(file, cfg));
    }

    public ModelConfig config() {
        return cfg;
    }

    public ModelWeights weights() {
        return w;
    }

    public int vocabSize() {
        return w.vocabSize;
    }

    /** Tokens of one sequence to evaluate in a batch, appended after what its cache holds. */
    public record SequenceInput(KvCache cache, int[] tokens, boolean allLogits) {
    }

    /**
     * Runs {@code n} tokens as one batch at positions {@code cache.length() ...}, appends their keys and values to
     * the cache, and returns logits: for every token ({@code allLogits}, {@code n * vocab} floats) or for the last
     * one only ({@code vocab} floats).
     */
    public float[] forward(int[] tokens, int n, KvCache cache, boolean allLogits, RoutingObserver observer) {
        int[] input = n == tokens.length ? tokens : java.util.Arrays.copyOf(tokens, n);
        return forward(java.util.List.of(new SequenceInput(cache, input, allLogits)), observer)[0];
    }

    /**
     * Runs the tokens of several sequences as one batch: every weight matrix is read once for all of them, while
     * each token attends only to its own sequence. Each token's result is bit-identical to running its sequence
     * alone (every reduction runs in the same order whatever the batch holds). Returns per sequence the logits
     * of its last token, or of all its tokens when asked.
     */
    public float[][] forward(java.util.List<SequenceInput> inputs, RoutingObserver observer) {
        int n = 0;
        java.util.Set<KvCache> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (SequenceInput in : inputs) {
            if (!seen.add(in.cache())) throw new IllegalArgumentException("a sequence appears twice in one batch");
            if (in.tokens().length == 0) throw new IllegalArgumentException("no tokens to evaluate");
            if (in.cache().length() + in.tokens().length > in.cache().capacity()) {
                throw new ContextOverflowException(in.cache().length(), in.tokens().length, in.cache().capacity());
            }
            for (int id : in.tokens()) {
                if (id < 0 || id >= w.vocabSize) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + w.vocabSize + ")");
                }
            }
            n += in.tokens().length;
        }
        if (n == 0) throw new IllegalArgumentException("no tokens to evaluate");
        // Flatten: token t belongs to cache caches[t] at position positions[t].
        KvCache[] caches = new KvCache[n];
        int[] positions = new int[n];
        int dim = cfg.embeddingLength();
        float[] x = new float[n * dim];
        int t = 0;
        for (SequenceInput in : inputs) {
            for (int i = 0; i < in.tokens().length; i++, t++) {
                caches[t] = in.cache();
                positions[t] = in.cache().length() + i;
                MatMul.row(w.tokenEmbedding, in.tokens()[i], x, t * dim);
            }
        }

        float[] xb = new float[n * dim];
        for (int l = 0; l < cfg.blockCount(); l++) {
            ModelWeights.Layer lw = w.layers[l];
            for (int r = 0; r < n; r++) RmsNorm.apply(xb, r * dim, x, r * dim, lw.attnNorm(), dim, cfg.rmsEps());
            attention(l, lw, xb, n, caches, positions, x);

            for (int r = 0; r < n; r++) RmsNorm.apply(xb, r * dim, x, r * dim, lw.ffnNorm(), dim, cfg.rmsEps());
            if (cfg.isMoe()) {
                MoeBlock.forward(cfg, lw, l, xb, n, x, observer);
            } else {
                float[] out = new float[n * dim];
                FeedForwardBlock.run(lw.dense(), 0, xb, n, out, cfg.arch().activation());
                for (int i = 0; i < n * dim; i++) x[i] += out[i];
            }
        }

        float[][] result = new float[inputs.size()][];
        int first = 0;
        for (int s = 0; s < inputs.size(); s++) {
            SequenceInput in = inputs.get(s);
            int len = in.tokens().length;
            int from = in.allLogits() ? first : first + len - 1;
            int rows = first + len - from;
            float[] normed = new float[rows * dim];
            for (int r = 0; r < rows; r++) RmsNorm.apply(normed, r * dim, x, (from + r) * dim, w.outputNorm, dim, cfg.rmsEps());
            result[s] = new float[rows * w.vocabSize];
            MatMul.mul(w.output, normed, 0, rows, result[s], 0);
            in.cache().advance(len);
            first += len;
        }
        return result;
    }

    /** Self-attention of the batch: projections, q/k norms, RoPE, cache append, attention, output projection. */
    private void attention(int l, ModelWeights.Layer lw, float[] xb, int n, KvCache[] caches, int[] positions, float[] residual) {
        int qDim = cfg.qDim(), kvDim = cfg.kvDim(), hd = cfg.headDim();
        float[] q = new float[n * qDim], k = new float[n * kvDim], v = new float[n * kvDim];
        MatMul.mul(lw.wq(), xb, 0, n, q, 0);
        MatMul.mul(lw.wk(), xb, 0, n, k, 0);
        MatMul.mul(lw.wv(), xb, 0, n, v, 0);
        FeedForwardBlock.addBias(q, n, qDim, lw.bq(), 0);
        FeedForwardBlock.addBias(k, n, kvDim, lw.bk(), 0);
        FeedForwardBlock.addBias(v, n, kvDim, lw.bv(), 0);
        switch (cfg.arch().qkNorm()) {
            case PER_HEAD -> {
                RmsNorm.applyRows(q, 0, n * cfg.headCount(), hd, lw.qNorm(), cfg.rmsEps());
                RmsNorm.applyRows(k, 0, n * cfg.kvHeadCount(), hd, lw.kNorm(), cfg.rmsEps());
            }
            case WHOLE -> {
                RmsNorm.applyRows(q, 0, n, qDim, lw.qNorm(), cfg.rmsEps());
                RmsNorm.applyRows(k, 0, n, kvDim, lw.kNorm(), cfg.rmsEps());
            }
            case NONE -> {
            }
        }
        float[] cos = new float[rope.nRot() / 2], sin = new float[rope.nRot() / 2];
        for (int t = 0; t < n; t++) {
            rope.apply(q, t * qDim, cfg.headCount(), hd, positions[t], cos, sin);
            rope.apply(k, t * kvDim, cfg.kvHeadCount(), hd, positions[t], cos, sin);
            caches[t].keys[l].write(positions[t], k, t * kvDim);
            caches[t].values[l].write(positions[t], v, t * kvDim);
        }

        float[] att = new float[n * qDim];
        float scale = (float) (1.0 / Math.sqrt(hd));
        Parallel.forRange(n, t -> {
            int pos = positions[t];
            float[] scores = new float[pos + 1];
            Attention.attend(q, t * qDim, cfg.headCount(), cfg.kvHeadCount(), hd, caches[t].keys[l], caches[t].values[l],
                    cfg.attentionStart(l, pos), pos, scale, lw.sinks(), att, t * qDim, scores);
        });
        float[] o = new float[n * cfg.embeddingLength()];
        MatMul.mul(lw.wo(), att, 0, n, o, 0);
        FeedForwardBlock.addBias(o, n, cfg.embeddingLength(), lw.bo(), 0);
        for (int i = 0; i < o.length; i++) residual[i] += o[i];
    }
}
