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
        this.rope = cfg.rope();
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

    /**
     * Runs {@code n} tokens as one batch at positions {@code cache.length() ...}, appends their keys and values to
     * the cache, and returns logits: for every token ({@code allLogits}, {@code n * vocab} floats) or for the last
     * one only ({@code vocab} floats).
     */
    public float[] forward(int[] tokens, int n, KvCache cache, boolean allLogits, RoutingObserver observer) {
        if (n <= 0) throw new IllegalArgumentException("no tokens to evaluate");
        int start = cache.length();
        if (start + n > cache.capacity()) throw new ContextOverflowException(start, n, cache.capacity());
        for (int t = 0; t < n; t++) {
            if (tokens[t] < 0 || tokens[t] >= w.vocabSize) {
                throw new IllegalArgumentException("token id " + tokens[t] + " is outside the vocabulary [0, " + w.vocabSize + ")");
            }
        }
        int dim = cfg.embeddingLength();
        float[] x = new float[n * dim];
        for (int t = 0; t < n; t++) MatMul.row(w.tokenEmbedding, tokens[t], x, t * dim);

        float[] xb = new float[n * dim];
        for (int l = 0; l < cfg.blockCount(); l++) {
            ModelWeights.Layer lw = w.layers[l];
            for (int t = 0; t < n; t++) RmsNorm.apply(xb, t * dim, x, t * dim, lw.attnNorm(), dim, cfg.rmsEps());
            attention(l, lw, xb, n, start, cache, x);

            float[] ffnNorm = lw.ffnNorm();
            for (int t = 0; t < n; t++) RmsNorm.apply(xb, t * dim, x, t * dim, ffnNorm, dim, cfg.rmsEps());
            if (cfg.isMoe()) {
                MoeBlock.forward(cfg, lw, l, xb, n, x, observer);
            } else {
                float[] out = new float[n * dim];
                FeedForwardBlock.run(lw.dense(), 0, xb, n, out, cfg.arch().activation());
                for (int i = 0; i < n * dim; i++) x[i] += out[i];
            }
        }
        cache.advance(n);

        int first = allLogits ? 0 : n - 1;
        int rows = n - first;
        float[] normed = new float[rows * dim];
        for (int t = 0; t < rows; t++) RmsNorm.apply(normed, t * dim, x, (first + t) * dim, w.outputNorm, dim, cfg.rmsEps());
        float[] logits = new float[rows * w.vocabSize];
        MatMul.mul(w.output, normed, 0, rows, logits, 0);
        return logits;
    }

    /** Self-attention of the batch: projections, q/k norms, RoPE, cache append, attention, output projection. */
    private void attention(int l, ModelWeights.Layer lw, float[] xb, int n, int start, KvCache cache, float[] residual) {
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
            rope.apply(q, t * qDim, cfg.headCount(), hd, start + t, cos, sin);
            rope.apply(k, t * kvDim, cfg.kvHeadCount(), hd, start + t, cos, sin);
            cache.keys[l].write(start + t, k, t * kvDim);
            cache.values[l].write(start + t, v, t * kvDim);
        }

        float[] att = new float[n * qDim];
        float scale = (float) (1.0 / Math.sqrt(hd));
        Parallel.forRange(n, t -> {
            int pos = start + t;
            float[] scores = new float[pos + 1];
            Attention.attend(q, t * qDim, cfg.headCount(), cfg.kvHeadCount(), hd, cache.keys[l], cache.values[l],
                    cfg.attentionStart(l, pos), pos, scale, lw.sinks(), att, t * qDim, scores);
        });
        float[] o = new float[n * cfg.embeddingLength()];
        MatMul.mul(lw.wo(), att, 0, n, o, 0);
        FeedForwardBlock.addBias(o, n, cfg.embeddingLength(), lw.bo(), 0);
        for (int i = 0; i < o.length; i++) residual[i] += o[i];
    }
}
