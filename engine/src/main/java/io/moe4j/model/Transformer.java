package io.moe4j.model;


import io.moe4j.kernels.Activation;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.ExpertCounts;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.Rope;
import io.moe4j.kernels.Routing;
import io.moe4j.kernels.RoutingTrace;
import io.moe4j.kernels.Tensor;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The decoder forward pass shared by every architecture: embedding, then per block attention and a dense or
 * sparse feed-forward network, each behind an RMSNorm and added to the residual stream; then the output head.
 * Architecture differences are switches of {@link Architecture} and optional tensors of {@link ModelWeights}.
 * All arithmetic is done by the model's {@link Backend}, on tensors it owns: activations live in per-thread
 * tensors of that backend, reused from call to call; token ids and positions go in, logits come out.
 */
public final class Transformer {
    private final ModelConfig cfg;
    private final ModelWeights w;
    private final Rope rope;
    private final Backend ops;
    private final Routing routing;
    private final Activation activation;
    private final ThreadLocal<Work> buffers;

    /** A transformer over {@code weights}, which {@code backend} prepared ({@link ModelWeights}). */
    public Transformer(ModelConfig cfg, ModelWeights weights, Backend backend) {
        this.cfg = cfg;
        this.w = weights;
        this.rope = cfg.rope(weights.ropeFreqFactors);
        this.ops = backend;
        this.activation = switch (cfg.arch().activation()) {
            case SWIGLU -> Activation.SWIGLU;
            case SWIGLU_CLAMPED -> Activation.SWIGLU_CLAMPED;
        };
        this.routing = !cfg.isMoe() ? null : new Routing(switch (cfg.gating()) {
            case SOFTMAX_THEN_TOP_K -> Routing.Gating.SOFTMAX_THEN_TOP_K;
            case TOP_K_THEN_SOFTMAX -> Routing.Gating.TOP_K_THEN_SOFTMAX;
            case SIGMOID_THEN_TOP_K -> Routing.Gating.SIGMOID_THEN_TOP_K;
        }, cfg.expertUsedCount(), cfg.normalizeTopK(), cfg.expertWeightsScale(), cfg.expertGroupCount(), cfg.expertGroupUsedCount());
        this.buffers = ThreadLocal.withInitial(() -> new Work(backend));
    }

    /** Reads architecture, hyper-parameters and weights of an open GGUF file (the mapping must stay open), on the CPU. */
    public static Transformer of(io.moe4j.gguf.GgufFile file) {
        return of(file, Backend.cpu(), LoadProgress.NONE);
    }

    /** {@link #of(io.moe4j.gguf.GgufFile)} on {@code backend}, telling {@code progress} how far loading the weights has come. */
    public static Transformer of(io.moe4j.gguf.GgufFile file, Backend backend, LoadProgress progress) {
        return of(file, backend, progress, RopeOverrides.NONE);
    }

    /** {@link #of(io.moe4j.gguf.GgufFile, Backend, LoadProgress)} with RoPE parameters other than the file's. */
    public static Transformer of(io.moe4j.gguf.GgufFile file, Backend backend, LoadProgress progress, RopeOverrides rope) {
        var md = file.metadata();
        Architecture arch = io.moe4j.model.arch.Architectures.byName(md.getString("general.architecture"), md.source());
        ModelConfig cfg = rope.apply(ModelConfig.from(md, arch));
        return new Transformer(cfg, new ModelWeights(file, cfg, backend, progress), backend);
    }

    /** The backend that runs this model. */
    public Backend backend() {
        return ops;
    }

    /** Zeroed per-layer expert selection counters for {@link #forward(List, ExpertCounts, RoutingTrace)} (null for a dense model). */
    public ExpertCounts newExpertCounts() {
        return cfg.isMoe() ? ops.expertCounts(cfg.blockCount(), cfg.expertCount()) : null;
    }

    /**
     * A context shift of {@code cache} ({@link KvCache#shift}) with this model's rotary embedding, which every layer
     * applies alike; false when the cache cannot be shifted and its tokens must be evaluated again.
     */
    public boolean shift(KvCache cache, int keep, int discard) {
        return cache.shift(ops, rope, keep, discard);
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
    public float[] forward(int[] tokens, int n, KvCache cache, boolean allLogits, RoutingTrace trace) {
        int[] input = n == tokens.length ? tokens : java.util.Arrays.copyOf(tokens, n);
        return forward(List.of(new SequenceInput(cache, input, allLogits)), null, trace)[0];
    }

    /**
     * Runs the tokens of several sequences as one batch: every weight matrix is read once for all of them, while
     * each token attends only to its own sequence. Each token's result is bit-identical to running its sequence
     * alone (every reduction runs in the same order whatever the batch holds). Returns per sequence the logits
     * of its last token, or of all its tokens when asked. {@code trace} (may be null) gets every routing decision on
     * the host.
     */
    public float[][] forward(List<SequenceInput> inputs, RoutingTrace trace) {
        return forward(inputs, null, trace);
    }

    /** {@link #forward(List, RoutingTrace)}, with the expert selections of every layer added to {@code counts} (may be null). */
    public float[][] forward(List<SequenceInput> inputs, ExpertCounts counts, RoutingTrace trace) {
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
                a.tokens[t] = in.tokens()[i];
            }
        }
        ops.embed(w.tokenEmbedding, a.tokens, n, a.x);
        ops.ropeAngles(rope, a.positions, n, a.cos, a.sin);

        for (int l = 0; l < cfg.blockCount(); l++) {
            ModelWeights.Layer lw = w.layers[l];
            ops.rmsNorm(a.x, 0, n, dim, lw.attnNorm(), cfg.rmsEps(), a.xb, 0);
            if (lw.latent() != null) latentAttention(l, lw, a, n);
            else attention(l, lw, a, n);
            ops.rmsNorm(a.x, 0, n, dim, lw.ffnNorm(), cfg.rmsEps(), a.xb, 0);
            if (lw.moe() != null) {
                ops.moe(l, lw.moe(), routing, activation, a.xb, n, a.x, counts, trace);
            } else {
                ops.feedForward(lw.dense(), activation, a.xb, n, a.x);
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
        int rows = start[inputs.size()];
        ops.matmul(w.output, a.xb, 0, rows, a.logits(rows * vocab), 0);
        float[][] result = new float[inputs.size()][];
        for (int s = 0; s < inputs.size(); s++) {
            result[s] = new float[(start[s + 1] - start[s]) * vocab];
            ops.read(a.logits, (long) start[s] * vocab, result[s], 0, result[s].length);
        }
        java.util.Arrays.fill(a.caches, 0, n, null); // do not keep the caches reachable from this thread
        java.util.Arrays.fill(a.keys, 0, n, null);
        java.util.Arrays.fill(a.values, 0, n, null);
        if (tStart != 0) Profile.forwardNanos += Profile.now() - tStart;
        return result;
    }

    /** Self-attention of the batch: projections, q/k norms, RoPE, cache append, attention, output projection. */
    private void attention(int l, ModelWeights.Layer lw, Work a, int n) {
        int qDim = cfg.qDim(), kvDim = cfg.kvDim(), hd = cfg.headDim(), dim = cfg.embeddingLength();
        ops.matmul(new Backend.Product(lw.wq(), a.xb, 0, n, a.q, 0), new Backend.Product(lw.wk(), a.xb, 0, n, a.k, 0),
                new Backend.Product(lw.wv(), a.xb, 0, n, a.v, 0));
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
            a.keys[t] = a.caches[t].keys[l];
            a.values[t] = a.caches[t].values[l];
            a.first[t] = cfg.attentionStart(l, a.positions[t]);
        }
        ops.appendKv(n, a.k, a.v, kvDim, a.keys, a.values, a.positions);
        long t0 = Profile.now();
        ops.attention(n, a.q, qDim, cfg.headCount(), cfg.kvHeadCount(), hd, a.keys, a.values, a.first, a.positions,
                cfg.attentionScale(), lw.sinks(), a.att);
        if (t0 != 0) Profile.attentionNanos += Profile.now() - t0;
        ops.matmul(lw.wo(), a.att, 0, n, a.o, 0);
        ops.addBias(a.o, n, dim, lw.bo());
        ops.add(a.x, 0, a.o, 0, n * dim);
    }

    /**
     * DeepSeek's multi-head latent attention in llama.cpp's absorbed form. Per token: q = q_b(norm(q_a(x))) holds
     * per head [q_nope | q_pe]; the row kv_a_mqa(x) = [c | k_pe] becomes [norm(c) | rope(k_pe)], the one cached row
     * of the position. Head h's query is [k_b[h]·q_nope | rope(q_pe)], so that its dot with a row is the original
     * q_nope·k_nope + q_pe·k_pe without ever expanding c into per-head keys; the value of a row is its c, and head
     * h's output v_b[h]·(softmax·c) is the original value mix. Then attn_output.
     */
    private void latentAttention(int l, ModelWeights.Layer lw, Work a, int n) {
        ModelWeights.LatentAttention m = lw.latent();
        ModelConfig.Mla mla = cfg.mla();
        int heads = cfg.headCount(), dim = cfg.embeddingLength(), lora = mla.kvLoraRank(), nope = mla.qkNope();
        int rot = mla.qkRope(), row = mla.keyRow(), qHead = mla.queryHead(), vHead = mla.valueHeadDim();
        if (m.qA() != null) {
            ops.matmul(new Backend.Product(m.qA(), a.xb, 0, n, a.qLow, 0), new Backend.Product(m.kvA(), a.xb, 0, n, a.k, 0));
            ops.rmsNorm(a.qLow, 0, n, mla.qLoraRank(), m.qANorm(), cfg.rmsEps(), a.qLow, 0);
            ops.matmul(m.qB(), a.qLow, 0, n, a.qHeads, 0);
        } else {
            ops.matmul(new Backend.Product(m.qB(), a.xb, 0, n, a.qHeads, 0), new Backend.Product(m.kvA(), a.xb, 0, n, a.k, 0));
        }
        // c is normalised apart (the norm works on whole rows) and put back into its row
        ops.copyRows(a.k, 0, row, a.latent, 0, lora, n, lora);
        ops.rmsNorm(a.latent, 0, n, lora, m.kvANorm(), cfg.rmsEps(), a.latent, 0);
        ops.copyRows(a.latent, 0, lora, a.k, 0, row, n, lora);
        ops.rope(rope, a.qHeads, nope, n, heads * qHead, heads, qHead, a.cos, a.sin);
        ops.rope(rope, a.k, lora, n, row, 1, rot, a.cos, a.sin);
        // the absorbed query heads, rows of `row` values like the cached ones
        ops.matmulHeads(m.kB(), heads, a.qHeads, 0, heads * qHead, qHead, n, a.q, 0, heads * row, row);
        ops.copyRows(a.qHeads, nope, qHead, a.q, lora, row, n * heads, rot);
        for (int t = 0; t < n; t++) {
            a.keys[t] = a.caches[t].keys[l];
            a.first[t] = cfg.attentionStart(l, a.positions[t]);
        }
        ops.appendKeys(n, a.k, row, a.keys, a.positions);
        long t0 = Profile.now();
        ops.latentAttention(n, a.q, heads * row, heads, row, lora, a.keys, a.first, a.positions, cfg.attentionScale(), a.att);
        if (t0 != 0) Profile.attentionNanos += Profile.now() - t0;
        ops.matmulHeads(m.vB(), heads, a.att, 0, heads * lora, lora, n, a.qHeads, 0, heads * vHead, vHead);
        ops.matmul(lw.wo(), a.qHeads, 0, n, a.o, 0);
        ops.addBias(a.o, n, dim, lw.bo());
        ops.add(a.x, 0, a.o, 0, n * dim);
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

    /** The activations of one forward pass, tensors of the backend kept per thread and grown to the largest batch seen. */
    private static final class Work {
        private final Backend ops;
        int capacity = -1;
        Tensor x, xb, q, k, v, att, o, cos, sin, logits;
        /** Latent attention only: the low-rank query, the projected query heads (then the value heads), c. */
        Tensor qLow, qHeads, latent;
        int[] tokens, positions, first;
        KvCache[] caches;
        KvStore[] keys, values;

        Work(Backend ops) {
            this.ops = ops;
        }

        Work ensure(ModelConfig cfg, int n) {
            if (n <= capacity) return this;
            int dim = cfg.embeddingLength(), half = cfg.ropeDim() / 2;
            x = ops.allocate((long) n * dim);
            xb = ops.allocate((long) n * dim);
            o = ops.allocate((long) n * dim);
            q = ops.allocate((long) n * cfg.qDim());
            att = ops.allocate((long) n * cfg.qDim());
            k = ops.allocate((long) n * cfg.kvDim());
            v = ops.allocate((long) n * cfg.kvDim());
            ModelConfig.Mla mla = cfg.mla();
            if (mla != null) {
                qLow = ops.allocate((long) n * Math.max(1, mla.qLoraRank()));
                qHeads = ops.allocate((long) n * cfg.headCount() * Math.max(mla.queryHead(), mla.valueHeadDim()));
                latent = ops.allocate((long) n * mla.kvLoraRank());
            }
            cos = ops.allocate((long) n * half);
            sin = ops.allocate((long) n * half);
            tokens = new int[n];
            positions = new int[n];
            first = new int[n];
            caches = new KvCache[n];
            keys = new KvStore[n];
            values = new KvStore[n];
            capacity = n;
            return this;
        }

        /** The logits tensor, at least {@code floats} long. */
        Tensor logits(long floats) {
            if (logits == null || logits.size() < floats) logits = ops.allocate(floats);
            return logits;
        }
    }
}
