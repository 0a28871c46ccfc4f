package io.moe4j.model;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.cpu.MatMul;
import io.moe4j.kernels.ops.Activations;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.kernels.Rope;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The decoder forward pass shared by every architecture: embedding, then per block attention and a dense or
 * sparse feed-forward network, each behind an RMSNorm and added to the residual stream; then the output head.
 * Architecture differences are switches of {@link Architecture} and optional tensors of {@link ModelWeights}.
 * The arithmetic is done by a {@link Backend} (the CPU one unless told otherwise); activations live in per-thread
 * buffers that are reused from call to call.
 */
public final class Transformer {
    private final ModelConfig cfg;
    private final ModelWeights w;
    private final Rope rope;
    private final Backend ops;
    private final ThreadLocal<Work> buffers = ThreadLocal.withInitial(Work::new);

    public Transformer(ModelConfig cfg, ModelWeights weights) {
        this(cfg, weights, Backend.cpu());
    }

    public Transformer(ModelConfig cfg, ModelWeights weights, Backend backend) {
        this.cfg = cfg;
        this.w = weights;
        this.rope = cfg.rope(weights.ropeFreqFactors);
        this.ops = backend;
    }

    /** Reads architecture, hyper-parameters and weights of an open GGUF file (the mapping must stay open). */
    public static Transformer of(io.moe4j.gguf.GgufFile file) {
        return of(file, LoadProgress.NONE);
    }

    /** {@link #of(io.moe4j.gguf.GgufFile)}, telling {@code progress} how far loading the weights has come. */
    public static Transformer of(io.moe4j.gguf.GgufFile file, LoadProgress progress) {
        var md = file.metadata();
        Architecture arch = io.moe4j.model.arch.Architectures.byName(md.getString("general.architecture"), md.source());
        ModelConfig cfg = ModelConfig.from(md, arch);
        return new Transformer(cfg, new ModelWeights(file, cfg, progress));
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
     * the cache (taking its pages first: {@link KvBudgetExceededException} when the pool has no room), and returns
     * logits: for every token ({@code allLogits}, {@code n * vocab} floats) or for the last one only ({@code vocab}
     * floats).
     */
    public float[] forward(int[] tokens, int n, KvCache cache, boolean allLogits, RoutingObserver observer) {
        int[] input = n == tokens.length ? tokens : java.util.Arrays.copyOf(tokens, n);
        return forward(List.of(new SequenceInput(cache, input, allLogits)), observer)[0];
    }

    /**
     * Runs the tokens of several sequences as one batch: every weight matrix is read once for all of them, while
     * each token attends only to its own sequence. Each token's result is bit-identical to running its sequence
     * alone (every reduction runs in the same order whatever the batch holds). Returns per sequence the logits
     * of its last token, or of all its tokens when asked.
     */
    public float[][] forward(List<SequenceInput> inputs, RoutingObserver observer) {
        int n = validate(inputs);
        long tStart = Profile.now();
        int dim = cfg.embeddingLength();
        Work a = buffers.get().ensure(cfg, n);
        // Flatten: token t belongs to cache a.caches[t] at position a.positions[t].
        int t = 0;
        for (SequenceInput in : inputs) {
            for (int i = 0; i < in.tokens().length; i++, t++) {
                a.caches[t] = in.cache();
                a.positions[t] = in.cache().length() + i;
                ops.embed(w.tokenEmbedding, in.tokens()[i], a.x, t * dim);
                rope.angles(a.positions[t], a.cos, a.sin, t * (rope.nRot() / 2));
            }
        }

        for (int l = 0; l < cfg.blockCount(); l++) {
            ModelWeights.Layer lw = w.layers[l];
            ops.rmsNorm(a.x, 0, n, dim, lw.attnNorm(), cfg.rmsEps(), a.xb, 0);
            attention(l, lw, a, n);
            ops.rmsNorm(a.x, 0, n, dim, lw.ffnNorm(), cfg.rmsEps(), a.xb, 0);
            if (cfg.isMoe()) {
                MoeBlock.forward(ops, cfg, lw, l, a.xb, n, a.x, observer, a.moe);
            } else {
                ops.feedForward(lw.dense(), activation(), a.xb, n, 1, a.zeros, a.ones, null, null, a.x);
            }
        }

        // The output head runs once for the rows of all sequences: a step of 8 decoding sequences reads it once, not
        // 8 times (the largest matrix of small models: 35 MB of the 443 MB a step of the serving bench reads).
        int[] start = new int[inputs.size() + 1];
        int first = 0;
        for (int s = 0; s < inputs.size(); s++) {
            SequenceInput in = inputs.get(s);
            int len = in.tokens().length;
            int from = in.allLogits() ? first : first + len - 1;
            int rows = first + len - from;
            ops.rmsNorm(a.x, from * dim, rows, dim, w.outputNorm, cfg.rmsEps(), a.xb, start[s] * dim);
            start[s + 1] = start[s] + rows;
            in.cache().advance(len);
            first += len;
        }
        int vocab = w.vocabSize;
        float[] logits = new float[start[inputs.size()] * vocab];
        ops.matmul(w.output, a.xb, 0, start[inputs.size()], logits, 0);
        float[][] result = new float[inputs.size()][];
        if (inputs.size() == 1) result[0] = logits;
        else for (int s = 0; s < inputs.size(); s++) result[s] = java.util.Arrays.copyOfRange(logits, start[s] * vocab, start[s + 1] * vocab);
        java.util.Arrays.fill(a.caches, 0, n, null); // do not keep the caches reachable from this thread
        java.util.Arrays.fill(a.keys, 0, n, null);
        java.util.Arrays.fill(a.values, 0, n, null);
        if (tStart != 0) Profile.forwardNanos += Profile.now() - tStart;
        return result;
    }

    /** Self-attention of the batch: projections, q/k norms, RoPE, cache append, attention, output projection. */
    private void attention(int l, ModelWeights.Layer lw, Work a, int n) {
        int qDim = cfg.qDim(), kvDim = cfg.kvDim(), hd = cfg.headDim(), dim = cfg.embeddingLength();
        ops.matmul(new MatMul.Task(lw.wq(), a.xb, 0, n, a.q, 0), new MatMul.Task(lw.wk(), a.xb, 0, n, a.k, 0),
                new MatMul.Task(lw.wv(), a.xb, 0, n, a.v, 0));
        ops.addBias(a.q, n, qDim, lw.bq());
        ops.addBias(a.k, n, kvDim, lw.bk());
        ops.addBias(a.v, n, kvDim, lw.bv());
        switch (cfg.arch().qkNorm()) {
            case PER_HEAD -> {
                ops.rmsNorm(a.q, 0, n * cfg.headCount(), hd, lw.qNorm(), cfg.rmsEps(), a.q, 0);
                ops.rmsNorm(a.k, 0, n * cfg.kvHeadCount(), hd, lw.kNorm(), cfg.rmsEps(), a.k, 0);
            }
            case WHOLE -> {
                ops.rmsNorm(a.q, 0, n, qDim, lw.qNorm(), cfg.rmsEps(), a.q, 0);
                ops.rmsNorm(a.k, 0, n, kvDim, lw.kNorm(), cfg.rmsEps(), a.k, 0);
            }
            case NONE -> {
            }
        }
        ops.rope(rope, a.q, 0, n, qDim, cfg.headCount(), hd, a.cos, a.sin);
        ops.rope(rope, a.k, 0, n, kvDim, cfg.kvHeadCount(), hd, a.cos, a.sin);
        for (int t = 0; t < n; t++) {
            int pos = a.positions[t];
            a.caches[t].keys[l].write(pos, a.k, t * kvDim);
            a.caches[t].values[l].write(pos, a.v, t * kvDim);
            a.keys[t] = a.caches[t].keys[l];
            a.values[t] = a.caches[t].values[l];
            a.first[t] = cfg.attentionStart(l, pos);
        }
        float scale = (float) (1.0 / Math.sqrt(hd));
        ops.attention(n, a.q, qDim, cfg.headCount(), cfg.kvHeadCount(), hd, a.keys, a.values, a.first, a.positions,
                scale, lw.sinks(), a.att);
        ops.matmul(lw.wo(), a.att, 0, n, a.o, 0);
        ops.addBias(a.o, n, dim, lw.bo());
        ops.add(a.x, 0, a.o, 0, n * dim);
    }

    private Activations.Gated activation() {
        return switch (cfg.arch().activation()) {
            case SWIGLU -> Activations.Gated.SWIGLU;
            case SWIGLU_CLAMPED -> Activations.Gated.SWIGLU_CLAMPED;
        };
    }

    private int validate(List<SequenceInput> inputs) {
        int n = 0;
        Set<KvCache> seen = Collections.newSetFromMap(new IdentityHashMap<>());
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
        // Every page the batch writes is taken before any arithmetic: an exhausted budget fails the call cleanly.
        for (SequenceInput in : inputs) in.cache().reserve(in.tokens().length);
        return n;
    }

    /** The activations of one forward pass, kept per thread and grown to the largest batch seen. */
    private static final class Work {
        int capacity = -1;
        float[] x, xb, q, k, v, att, o, cos, sin, ones;
        int[] positions, first, zeros;
        KvCache[] caches;
        KvBuffer[] keys, values;
        final MoeBlock.Buffers moe = new MoeBlock.Buffers();

        Work ensure(ModelConfig cfg, int n) {
            if (n <= capacity) return this;
            int dim = cfg.embeddingLength(), half = cfg.ropeDim() / 2;
            x = new float[n * dim];
            xb = new float[n * dim];
            o = new float[n * dim];
            q = new float[n * cfg.qDim()];
            att = new float[n * cfg.qDim()];
            k = new float[n * cfg.kvDim()];
            v = new float[n * cfg.kvDim()];
            cos = new float[n * half];
            sin = new float[n * half];
            ones = new float[n];
            java.util.Arrays.fill(ones, 1f);
            zeros = new int[n];
            positions = new int[n];
            first = new int[n];
            caches = new KvCache[n];
            keys = new KvBuffer[n];
            values = new KvBuffer[n];
            capacity = n;
            return this;
        }
    }
}
