package io.moe4j.tools.synth;

import io.moe4j.Moe4jException;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.arch.Architectures;

import java.util.ArrayList;
import java.util.List;

/**
 * The hyper-parameters of a decoder model, enough to lay out every tensor with llama.cpp's names and write its
 * {@code <arch>.*} metadata.
 *
 * @param arch        llama.cpp architecture name (one of {@link Architectures#names()})
 * @param name        general.name
 * @param headDim     a query/key head (with latent attention: qk_nope + qk_rope)
 * @param ff          dense FFN hidden size (the expert size for llama/olmoe MoE, where llama.cpp uses one key)
 * @param experts     routed experts per layer, 0 for a dense model
 * @param expertFf    hidden size of one expert
 * @param sharedFf    hidden size of the shared expert (qwen2moe) or of all shared experts together (deepseek2), 0 if none
 * @param slidingWindow gpt-oss sliding window of the even layers, 0 if none
 * @param yarnFactor  YaRN rope scaling factor, 0 if none
 * @param tied        output projection shared with the token embedding
 * @param mla         the sizes of DeepSeek's latent attention, or null for grouped-query attention
 * @param routing     DeepSeek's routing (dense leading blocks, groups, sigmoid scores), or null for plain top-k
 */
public record ModelShape(String arch, String name, int vocab, int embd, int layers, int heads, int kvHeads, int headDim,
                         int ff, int experts, int topK, int expertFf, int sharedFf, double ropeBase, float eps, int ctx,
                         int slidingWindow, double yarnFactor, int yarnOrigCtx, boolean tied, Mla mla, Routing routing) {

    /**
     * Multi-head latent attention (llama.cpp's deepseek2).
     *
     * @param qLoraRank         rank of the query's low-rank projection, 0 for a plain attn_q
     * @param kvLoraRank        size of the cached latent
     * @param qkNope            the part of a query/key head without RoPE
     * @param qkRope            the roped part
     * @param vHeadDim          a value head
     * @param yarnLogMultiplier {@code rope.scaling.yarn_log_multiplier}: 0.1 × config.json's mscale_all_dim
     */
    public record Mla(int qLoraRank, int kvLoraRank, int qkNope, int qkRope, int vHeadDim, double yarnLogMultiplier) {
    }

    /**
     * DeepSeek's routing.
     *
     * @param leadingDense blocks before the first MoE block, which have a dense FFN of {@code ff}
     * @param groups       expert groups (0: the key is not written)
     * @param groupsUsed   groups a token chooses its experts from
     * @param sigmoid      sigmoid router scores with a selection bias (exp_probs_b), else softmax
     * @param normalize    the selected weights are renormalised
     * @param scale        factor on the selected weights (routed_scaling_factor)
     */
    public record Routing(int leadingDense, int groups, int groupsUsed, boolean sigmoid, boolean normalize, double scale) {
    }

    /** A shape with grouped-query attention and plain top-k routing. */
    public ModelShape(String arch, String name, int vocab, int embd, int layers, int heads, int kvHeads, int headDim,
                      int ff, int experts, int topK, int expertFf, int sharedFf, double ropeBase, float eps, int ctx,
                      int slidingWindow, double yarnFactor, int yarnOrigCtx, boolean tied) {
        this(arch, name, vocab, embd, layers, heads, kvHeads, headDim, ff, experts, topK, expertFf, sharedFf, ropeBase, eps,
                ctx, slidingWindow, yarnFactor, yarnOrigCtx, tied, null, null);
    }

    /** The engine's description of the architecture. */
    public Architecture architecture() {
        return Architectures.byName(arch, "model shape " + name);
    }

    public FileLayout files() {
        return architecture().files();
    }

    /** Blocks before the first MoE block (dense), 0 without DeepSeek routing. */
    public int leadingDense() {
        return routing == null ? 0 : routing.leadingDense();
    }

    /** Whether block {@code layer} has routed experts. */
    public boolean isMoeLayer(int layer) {
        return isMoe() && layer >= leadingDense();
    }

    /** Whether the selected experts' weights are renormalised (DeepSeek's from its routing, else the architecture's). */
    public boolean normalizeTopK() {
        return routing != null ? routing.normalize() : architecture().normalizeTopK();
    }

    public boolean isMoe() {
        return experts > 0;
    }

    public int qDim() {
        return heads * headDim;
    }

    /** The attention output's input: heads × the value head. */
    public int attnOutDim() {
        return mla != null ? heads * mla.vHeadDim() : qDim();
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
        if (mla != null) {
            long q = mla.qLoraRank() > 0 ? (long) embd * mla.qLoraRank() + (long) mla.qLoraRank() * qDim() : (long) embd * qDim();
            long kv = (long) embd * (mla.kvLoraRank() + mla.qkRope())
                    + (long) heads * mla.kvLoraRank() * (mla.qkNope() + mla.vHeadDim());
            return q + kv + (long) attnOutDim() * embd;
        }
        return (long) embd * qDim() + 2L * embd * kvDim() + (long) qDim() * embd;
    }

    public long embeddingParams() {
        return (long) vocab * embd * (tied ? 1 : 2);
    }

    public long totalParams() {
        long router = isMoe() ? (long) embd * experts : 0;
        long dense = leadingDense() * (attentionParams() + 3L * embd * ff);
        return embeddingParams() + dense + (layers - leadingDense()) * (attentionParams() + totalFfnParams() + router);
    }

    public long activeParams() {
        long router = isMoe() ? (long) embd * experts : 0;
        long dense = leadingDense() * (attentionParams() + 3L * embd * ff);
        return embeddingParams() + dense + (layers - leadingDense()) * (attentionParams() + activeFfnParams() + router);
    }

    /** Checks the combination; every message says which parameter is wrong. */
    public ModelShape validate() {
        Architecture a;
        try {
            a = architecture();
        } catch (Moe4jException e) {
            throw new Moe4jException("invalid model shape: " + e.getMessage());
        }
        FileLayout f = a.files();
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
            req(f.experts() != FileLayout.Experts.ALWAYS, "architecture " + arch + " needs experts (dense: "
                    + String.join(", ", names(x -> x.files().experts() != FileLayout.Experts.ALWAYS)) + ")");
        }
        req(sharedFf == 0 || f.sharedExpert() != FileLayout.SharedExpert.NONE, "a shared expert (shared-ff) exists only in "
                + String.join(", ", names(x -> x.files().sharedExpert() != FileLayout.SharedExpert.NONE)));
        req(sharedFf == 0 || f.sharedExpert() != FileLayout.SharedExpert.COUNTED || sharedFf % expertHidden() == 0,
                "shared-ff " + sharedFf + " must be a whole number of experts of " + expertHidden() + " (" + arch + " counts shared experts)");
        boolean latent = a.attention() == Architecture.AttentionKind.LATENT;
        req(latent == (mla != null), "architecture " + arch + (latent ? " needs" : " has no") + " latent attention sizes");
        if (mla != null) {
            req(mla.qLoraRank() >= 0 && mla.kvLoraRank() > 0 && mla.qkNope() > 0 && mla.qkRope() > 0 && mla.vHeadDim() > 0,
                    "kv-lora-rank, qk_nope, qk_rope and v_head_dim must be positive, q-lora-rank not negative");
            req(headDim == mla.qkNope() + mla.qkRope(), "head-dim " + headDim + " must be qk_nope " + mla.qkNope()
                    + " + qk_rope " + mla.qkRope() + " with latent attention");
        }
        if (routing != null) {
            req(routing.leadingDense() >= 0 && (!isMoe() || routing.leadingDense() < layers), "dense-layers "
                    + routing.leadingDense() + " must be at least 0 and fewer than layers " + layers);
            req(routing.leadingDense() == 0 || ff > 0, "ff must be positive for the dense leading blocks");
            if (routing.groups() > 1) {
                req(experts % routing.groups() == 0 && routing.groupsUsed() >= 1 && routing.groupsUsed() <= routing.groups()
                                && topK <= routing.groupsUsed() * (experts / routing.groups()),
                        experts + " experts in " + routing.groups() + " groups of which " + routing.groupsUsed()
                                + " are used cannot give top-k " + topK);
            }
        }
        req(ctx > 0, "ctx must be positive");
        return this;
    }

    private static List<String> names(java.util.function.Predicate<Architecture> p) {
        List<String> out = new ArrayList<>();
        for (Architecture x : Architectures.all()) if (p.test(x)) out.add(x.name());
        return out;
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
        public Mla mla;
        public Routing routing;

        Builder(ModelShape s) {
            arch = s.arch; name = s.name; vocab = s.vocab; embd = s.embd; layers = s.layers; heads = s.heads;
            kvHeads = s.kvHeads; headDim = s.headDim; ff = s.ff; experts = s.experts; topK = s.topK;
            expertFf = s.expertFf; sharedFf = s.sharedFf; ropeBase = s.ropeBase; eps = s.eps; ctx = s.ctx;
            slidingWindow = s.slidingWindow; yarnFactor = s.yarnFactor; yarnOrigCtx = s.yarnOrigCtx; tied = s.tied;
            mla = s.mla; routing = s.routing;
        }

        public ModelShape build() {
            return new ModelShape(arch, name, vocab, embd, layers, heads, kvHeads, headDim, ff, experts, topK, expertFf,
                    sharedFf, ropeBase, eps, ctx, slidingWindow, yarnFactor, yarnOrigCtx, tied, mla, routing);
        }
    }
}
