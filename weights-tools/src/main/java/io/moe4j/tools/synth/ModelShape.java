package io.moe4j.tools.synth;

import io.moe4j.Moe4jException;

/**
 * The hyper-parameters of a decoder model, enough to lay out every tensor with llama.cpp's names and write its
 * {@code <arch>.*} metadata.
 *
 * @param arch        llama.cpp architecture name: llama, qwen2, qwen3, qwen3moe, qwen2moe, olmoe, gpt-oss
 * @param name        general.name
 * @param ff          dense FFN hidden size (the expert size for llama/olmoe MoE, where llama.cpp uses one key)
 * @param experts     routed experts per layer, 0 for a dense model
 * @param expertFf    hidden size of one expert
 * @param sharedFf    hidden size of the shared expert (qwen2moe), 0 if none
 * @param slidingWindow gpt-oss sliding window of the even layers, 0 if none
 * @param yarnFactor  YaRN rope scaling factor, 0 if none
 * @param tied        output projection shared with the token embedding
 */
public record ModelShape(String arch, String name, int vocab, int embd, int layers, int heads, int kvHeads, int headDim,
                         int ff, int experts, int topK, int expertFf, int sharedFf, double ropeBase, float eps, int ctx,
                         int slidingWindow, double yarnFactor, int yarnOrigCtx, boolean tied) {

    public boolean isMoe() {
        return experts > 0;
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Hidden size of one routed expert (llama and olmoe keep it in {@code ff}). */
    public int expertHidden() {
        return expertFf > 0 ? expertFf : ff;
    }

    /** Parameters of the FFN of one layer that one token uses (top-k experts plus the shared one), router excluded. */
    public long activeFfnParams() {
        if (!isMoe()) return 3L * embd * ff;
        return 3L * embd * ((long) topK * expertHidden() + sharedFf);
    }

    /** Parameters of the whole FFN of one layer (every expert plus the shared one), router excluded. */
    public long totalFfnParams() {
        if (!isMoe()) return 3L * embd * ff;
        return 3L * embd * ((long) experts * expertHidden() + sharedFf);
    }

    public long attentionParams() {
        return (long) embd * qDim() + 2L * embd * kvDim() + (long) qDim() * embd;
    }

    public long embeddingParams() {
        return (long) vocab * embd * (tied ? 1 : 2);
    }

    public long totalParams() {
        long router = isMoe() ? (long) embd * experts : 0;
        return embeddingParams() + layers * (attentionParams() + totalFfnParams() + router);
    }

    public long activeParams() {
        long router = isMoe() ? (long) embd * experts : 0;
        return embeddingParams() + layers * (attentionParams() + activeFfnParams() + router);
    }

    /** Checks the combination; every message says which parameter is wrong. */
    public ModelShape validate() {
        req(vocab >= 259, "vocab " + vocab + " must be at least 259 (256 byte tokens and 3 special tokens)");
        req(embd > 0 && layers > 0 && heads > 0 && kvHeads > 0 && headDim > 0, "embd, layers, heads, kv-heads and head-dim must be positive");
        req(heads % kvHeads == 0, "heads " + heads + " must be a multiple of kv-heads " + kvHeads);
        req(headDim % 2 == 0, "head-dim " + headDim + " must be even (RoPE)");
        req(experts >= 0 && topK >= 0, "experts and top-k must not be negative");
        if (isMoe()) {
            req(topK >= 1 && topK <= experts, "top-k " + topK + " must be between 1 and experts " + experts);
            req(expertHidden() > 0, "expert-ff must be positive");
        } else {
            req(ff > 0, "ff must be positive for a dense model");
            req(arch.equals("llama") || arch.equals("qwen3") || arch.equals("qwen2"), "architecture " + arch + " needs experts (dense: llama, qwen2 or qwen3)");
        }
        req(sharedFf == 0 || arch.equals("qwen2moe"), "a shared expert (shared-ff) exists only in qwen2moe");
        req(ctx > 0, "ctx must be positive");
        return this;
    }

    private static void req(boolean ok, String msg) {
        if (!ok) throw new Moe4jException("invalid model shape: " + msg);
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    /** A mutable copy for overrides. */
    public static final class Builder {
        public String arch, name;
        public int vocab, embd, layers, heads, kvHeads, headDim, ff, experts, topK, expertFf, sharedFf, ctx, slidingWindow, yarnOrigCtx;
        public double ropeBase, yarnFactor;
        public float eps;
        public boolean tied;

        Builder(ModelShape s) {
            arch = s.arch; name = s.name; vocab = s.vocab; embd = s.embd; layers = s.layers; heads = s.heads;
            kvHeads = s.kvHeads; headDim = s.headDim; ff = s.ff; experts = s.experts; topK = s.topK;
            expertFf = s.expertFf; sharedFf = s.sharedFf; ropeBase = s.ropeBase; eps = s.eps; ctx = s.ctx;
            slidingWindow = s.slidingWindow; yarnFactor = s.yarnFactor; yarnOrigCtx = s.yarnOrigCtx; tied = s.tied;
        }

        public ModelShape build() {
            return new ModelShape(arch, name, vocab, embd, layers, heads, kvHeads, headDim, ff, experts, topK, expertFf,
                    sharedFf, ropeBase, eps, ctx, slidingWindow, yarnFactor, yarnOrigCtx, tied);
        }
    }
}
