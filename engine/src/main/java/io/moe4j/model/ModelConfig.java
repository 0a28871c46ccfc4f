package io.moe4j.model;

import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.Rope;

/**
 * Hyper-parameters of a model, read from {@code <arch>.*} metadata keys (llama.cpp's names and defaults).
 * Expert FFN sizes and the vocabulary size are taken from tensor shapes by {@link ModelWeights}.
 *
 * <p>{@code headDim} and {@code valueDim} are the sizes of a cached key and value head ({@code attention.key_length},
 * {@code value_length}); with latent attention ({@link #mla}) they are those of the one cached row, as llama.cpp's
 * files give them (kv_lora_rank + the rope part, and kv_lora_rank), and {@code kvHeadCount} is 1.
 *
 * @param gating               how router logits become expert weights ({@code expert_gating_func}, else the
 *                             architecture's)
 * @param leadingDenseBlocks   the first blocks that have a dense FFN instead of experts ({@code leading_dense_block_count})
 * @param expertGroupCount     experts are split into this many groups of consecutive ids (0 or 1: no groups)
 * @param expertGroupUsedCount the groups a token chooses its experts from
 * @param mla                  the latent attention's sizes, or null for grouped-query attention
 * @param ropeYarnLogMultiplier {@code rope.scaling.yarn_log_multiplier} (0.1 × DeepSeek's mscale_all_dim): the
 *                             attention scale's YaRN correction of latent attention
 * @param yarnExtFactor        YaRN's extrapolation mix (llama.cpp's {@code yarn_ext_factor}; 1 unless overridden)
 * @param yarnBetaFast         YaRN's beta fast ({@code rope.scaling.yarn_beta_fast}, else 32)
 * @param yarnBetaSlow         YaRN's beta slow ({@code rope.scaling.yarn_beta_slow}, else 1)
 */
public record ModelConfig(
        Architecture arch,
        int embeddingLength,
        int blockCount,
        int headCount,
        int kvHeadCount,
        int headDim,
        int valueDim,
        int ropeDim,
        double ropeBase,
        Rope.Scaling ropeScaling,
        double ropeScalingFactor,
        int ropeOriginalContext,
        double ropeAttnFactor,
        float rmsEps,
        int expertCount,
        int expertUsedCount,
        boolean normalizeTopK,
        float expertWeightsScale,
        int contextLength,
        int slidingWindow,
        Architecture.Gating gating,
        int leadingDenseBlocks,
        int expertGroupCount,
        int expertGroupUsedCount,
        Mla mla,
        double ropeYarnLogMultiplier,
        double yarnExtFactor,
        double yarnBetaFast,
        double yarnBetaSlow) {

    /**
     * DeepSeek's multi-head latent attention: q = q_b(norm(q_a(x))) (or attn_q(x) when {@code qLoraRank} is 0) holds
     * per head [q_nope | q_pe]; kv_a_mqa(x) = [c | k_pe], c normalised. In llama.cpp's absorbed form each position
     * caches one row [c | rope(k_pe)] of {@link #keyRow()} values, the value is c, and head h's query is
     * [k_b[h]·q_nope | rope(q_pe)]; the attention output of head h, a mix of c rows, becomes v_b[h]·o.
     *
     * @param qLoraRank    rank of the query's low-rank projection (0: a plain attn_q)
     * @param kvLoraRank   size of the latent c
     * @param qkNope       the part of a query/key head without rotary embedding
     * @param qkRope       the rotary part (rope.dimension_count)
     * @param valueHeadDim a value head of the original attention ({@code value_length_mla})
     */
    public record Mla(int qLoraRank, int kvLoraRank, int qkNope, int qkRope, int valueHeadDim) {
        /** Values per cached position: c then the roped key part. */
        public int keyRow() {
            return kvLoraRank + qkRope;
        }

        /** Values per head of the projected query: q_nope then q_pe. */
        public int queryHead() {
            return qkNope + qkRope;
        }
    }

    /**
     * A configuration without the fields of routed-expert groups, dense leading blocks and latent attention, and
     * with llama.cpp's YaRN defaults (extrapolation mix 1, beta fast 32, beta slow 1).
     */
    public ModelConfig(Architecture arch, int embeddingLength, int blockCount, int headCount, int kvHeadCount, int headDim,
                       int valueDim, int ropeDim, double ropeBase, Rope.Scaling ropeScaling, double ropeScalingFactor,
                       int ropeOriginalContext, double ropeAttnFactor, float rmsEps, int expertCount, int expertUsedCount,
                       boolean normalizeTopK, float expertWeightsScale, int contextLength, int slidingWindow) {
        this(arch, embeddingLength, blockCount, headCount, kvHeadCount, headDim, valueDim, ropeDim, ropeBase, ropeScaling,
                ropeScalingFactor, ropeOriginalContext, ropeAttnFactor, rmsEps, expertCount, expertUsedCount, normalizeTopK,
                expertWeightsScale, contextLength, slidingWindow, arch.gating(), 0, 0, 0, null, 0, 1.0, 32.0, 1.0);
    }

    public static ModelConfig from(GgufMetadata md, Architecture arch) {
        String p = arch.name() + ".";
        String src = md.source();
        int nEmbd = positive(md, p + "embedding_length", md.getInt(p + "embedding_length"));
        int nLayer = positive(md, p + "block_count", md.getInt(p + "block_count"));
        if (md.has(p + "attention.head_count") && md.get(p + "attention.head_count").type() == io.moe4j.gguf.GgufValueType.ARRAY) {
            throw new ModelFormatException(src + ": per-layer head counts (" + p + "attention.head_count as an array) are not supported");
        }
        int nHead = positive(md, p + "attention.head_count", md.getInt(p + "attention.head_count"));
        int nKv = positive(md, p + "attention.head_count_kv", md.getInt(p + "attention.head_count_kv", nHead));
        if (nHead % nKv != 0) {
            throw new ModelFormatException(src + ": attention.head_count " + nHead + " is not a multiple of head_count_kv " + nKv);
        }
        int headDim = positive(md, p + "attention.key_length", md.getInt(p + "attention.key_length", nEmbd / nHead));
        int valueDim = positive(md, p + "attention.value_length", md.getInt(p + "attention.value_length", headDim));
        int ropeDim = positive(md, p + "rope.dimension_count", md.getInt(p + "rope.dimension_count", headDim));
        if (ropeDim > headDim || ropeDim % 2 != 0) {
            throw new ModelFormatException(src + ": rope.dimension_count " + ropeDim + " must be even and at most the head size " + headDim);
        }
        Mla mla = null;
        if (arch.attention() == Architecture.AttentionKind.LATENT) {
            mla = mla(md, p, nKv, headDim, valueDim, ropeDim);
        } else if (valueDim != headDim) {
            throw new ModelFormatException(src + ": key_length " + headDim + " != value_length " + valueDim + " is not supported");
        }
        double base = md.has(p + "rope.freq_base") ? md.getDouble(p + "rope.freq_base") : 10000.0;
        String scalingName = md.getString(p + "rope.scaling.type", "none");
        double factor = md.has(p + "rope.scaling.factor") ? md.getDouble(p + "rope.scaling.factor") : 1.0;
        if (md.has(p + "rope.scale_linear") && !md.has(p + "rope.scaling.type")) {
            scalingName = "linear";
            factor = md.getDouble(p + "rope.scale_linear");
        }
        Rope.Scaling scaling = switch (scalingName) {
            case "none" -> Rope.Scaling.NONE;
            case "linear" -> Rope.Scaling.LINEAR;
            case "yarn" -> Rope.Scaling.YARN;
            default -> throw new ModelFormatException(src + ": rope.scaling.type '" + scalingName + "' is not supported (none, linear, yarn)");
        };
        if (scaling != Rope.Scaling.NONE && !(factor > 0)) {
            throw new ModelFormatException(src + ": rope.scaling.factor " + factor + " must be positive");
        }
        if (scaling != Rope.Scaling.NONE && factor == 1.0) scaling = Rope.Scaling.NONE;
        int ctx = md.getInt(p + "context_length", 2048);
        int origCtx = md.getInt(p + "rope.scaling.original_context_length", ctx);
        double attnFactor = md.has(p + "rope.scaling.attn_factor") ? md.getDouble(p + "rope.scaling.attn_factor") : 1.0;
        // llama.cpp's defaults; files converted from Hugging Face configs that set them carry their own.
        double betaFast = md.has(p + "rope.scaling.yarn_beta_fast") ? md.getDouble(p + "rope.scaling.yarn_beta_fast") : 32.0;
        double betaSlow = md.has(p + "rope.scaling.yarn_beta_slow") ? md.getDouble(p + "rope.scaling.yarn_beta_slow") : 1.0;
        float eps = md.getFloat(p + "attention.layer_norm_rms_epsilon", 1e-5f);
        int nExpert = md.getInt(p + "expert_count", 0);
        int nUsed = md.getInt(p + "expert_used_count", 0);
        if (nExpert < 0 || nUsed < 0 || nUsed > nExpert || (nExpert > 0 && nUsed == 0)) {
            throw new ModelFormatException(src + ": expert_used_count " + nUsed + " must be between 1 and expert_count " + nExpert);
        }
        boolean norm = md.getBool(p + "expert_weights_norm", arch.normalizeTopK());
        float scale = md.getFloat(p + "expert_weights_scale", 1.0f);
        Architecture.Gating gating = arch.gating();
        if (md.has(p + "expert_gating_func")) {
            int g = md.getInt(p + "expert_gating_func");
            // llama.cpp's llama_expert_gating_func_type: 0 none (the architecture's default), 1 softmax, 2 sigmoid,
            // 3 softmax over the selected logits
            gating = switch (g) {
                case 0 -> arch.gating();
                case 1 -> Architecture.Gating.SOFTMAX_THEN_TOP_K;
                case 2 -> Architecture.Gating.SIGMOID_THEN_TOP_K;
                case 3 -> Architecture.Gating.TOP_K_THEN_SOFTMAX;
                default -> throw new ModelFormatException(src + ": " + p + "expert_gating_func " + g
                        + " is not supported (1 softmax, 2 sigmoid, 3 softmax of the selected)");
            };
        }
        int leadingDense = md.getInt(p + "leading_dense_block_count", 0);
        if (leadingDense < 0 || leadingDense > nLayer) {
            throw new ModelFormatException(src + ": leading_dense_block_count " + leadingDense + " must be between 0 and block_count " + nLayer);
        }
        int groups = md.getInt(p + "expert_group_count", 0), groupsUsed = md.getInt(p + "expert_group_used_count", 0);
        if (groups > 1) {
            if (nExpert % groups != 0 || groupsUsed < 1 || groupsUsed > groups || nUsed > groupsUsed * (nExpert / groups)) {
                throw new ModelFormatException(src + ": " + nExpert + " experts in expert_group_count " + groups
                        + " groups of which expert_group_used_count " + groupsUsed + " are used cannot give "
                        + nUsed + " experts per token");
            }
        }
        double yarnLogMul = scaling == Rope.Scaling.YARN && md.has(p + "rope.scaling.yarn_log_multiplier")
                ? md.getDouble(p + "rope.scaling.yarn_log_multiplier") : 0;
        int window = md.getInt(p + "attention.sliding_window", 0);
        if (arch.slidingWindowPeriod() > 0 && window <= 0) {
            throw new ModelFormatException(src + ": " + arch.name() + " needs " + p + "attention.sliding_window");
        }
        return new ModelConfig(arch, nEmbd, nLayer, nHead, nKv, headDim, valueDim, ropeDim, base, scaling, factor, origCtx,
                attnFactor, eps, nExpert, nUsed, norm, scale, ctx, window, gating, leadingDense, groups > 1 ? groups : 0,
                groups > 1 ? groupsUsed : 0, mla, yarnLogMul, 1.0, betaFast, betaSlow);
    }

    /**
     * The latent attention's sizes, checked against the cached row that {@code key_length} / {@code value_length}
     * describe. Files converted before kv_b_proj was split into attn_k_b and attn_v_b have no key_length_mla.
     */
    private static Mla mla(GgufMetadata md, String p, int nKv, int keyLength, int valueLength, int ropeDim) {
        String src = md.source();
        if (!md.has(p + "attention.key_length_mla") || !md.has(p + "attention.value_length_mla")) {
            throw new ModelFormatException(src + ": " + p + "attention.key_length_mla / value_length_mla are missing: the file "
                    + "is an older conversion that keeps kv_b_proj as one attn_kv_b tensor, which moe4j does not run "
                    + "(its latent attention needs attn_k_b and attn_v_b): convert the model again with a current "
                    + "convert_hf_to_gguf.py");
        }
        int kvLora = positive(md, p + "attention.kv_lora_rank", md.getInt(p + "attention.kv_lora_rank"));
        int qLora = md.getInt(p + "attention.q_lora_rank", 0);
        if (qLora < 0) throw new ModelFormatException(src + ": " + p + "attention.q_lora_rank " + qLora + " is negative");
        int keyMla = positive(md, p + "attention.key_length_mla", md.getInt(p + "attention.key_length_mla"));
        int valueMla = positive(md, p + "attention.value_length_mla", md.getInt(p + "attention.value_length_mla"));
        if (nKv != 1 || keyLength != kvLora + ropeDim || valueLength != kvLora || keyMla <= ropeDim) {
            throw new ModelFormatException(src + ": latent attention caches one row of kv_lora_rank + rope.dimension_count "
                    + "values (head_count_kv 1, key_length " + kvLora + " + " + ropeDim + ", value_length " + kvLora
                    + ", key_length_mla above the rope part); the file has head_count_kv " + nKv + ", key_length "
                    + keyLength + ", value_length " + valueLength + ", key_length_mla " + keyMla);
        }
        return new Mla(qLora, kvLora, keyMla - ropeDim, ropeDim, valueMla);
    }

    private static int positive(GgufMetadata md, String key, int v) {
        if (v <= 0 || v > (1 << 24)) throw new ModelFormatException(md.source() + ": " + key + " = " + v + " is out of range");
        return v;
    }

    public boolean isMoe() {
        return expertCount > 0;
    }

    /** Whether block {@code layer} routes to experts (the others, and every block of a dense model, have a dense FFN). */
    public boolean isMoeLayer(int layer) {
        return isMoe() && layer >= leadingDenseBlocks;
    }

    /** Whether the cache keeps no separate values: they are the first {@link #valueDim} values of each key row. */
    public boolean valuesInKeys() {
        return mla != null;
    }

    /**
     * The factor on the attention logits: 1/sqrt(head size); for latent attention 1/sqrt(qk_nope + qk_rope), the
     * original head's, times m² with m = 1 + yarn_log_multiplier · ln(factor) under YaRN (llama.cpp moves DeepSeek's
     * YaRN magnitude from the rotation into this scale, see {@link #rope}).
     */
    public float attentionScale() {
        if (mla == null) return (float) (1.0 / Math.sqrt(headDim));
        double m = ropeScaling == Rope.Scaling.YARN ? ropeAttnFactor * (1 + ropeYarnLogMultiplier * Math.log(ropeScalingFactor)) : 1;
        return (float) (m * m / Math.sqrt(mla.queryHead()));
    }

    public int qDim() {
        return headCount * headDim;
    }

    public int kvDim() {
        return kvHeadCount * headDim;
    }

    /** Rows of {@link #kvDim} values cached per position and layer: a key and a value, or latent attention's one row. */
    public int kvRowsPerToken() {
        return valuesInKeys() ? 1 : 2;
    }

    /**
     * RoPE for this model; {@code freqFactors} is the optional rope_freqs tensor (Llama 3.1 style), or null. Latent
     * attention under YaRN rotates with magnitude exactly 1: llama.cpp divides its attn_factor by YaRN's
     * 1 + 0.1 ln(factor) and puts DeepSeek's own magnitude into the attention scale ({@link #attentionScale}).
     */
    public Rope rope(float[] freqFactors) {
        double attn = mla != null && ropeScaling == Rope.Scaling.YARN ? 1 / (1 + 0.1 * Math.log(ropeScalingFactor)) : ropeAttnFactor;
        return new Rope(arch.ropeStyle(), ropeDim, ropeBase, ropeScaling, ropeScalingFactor, ropeOriginalContext,
                yarnExtFactor, yarnBetaFast, yarnBetaSlow, attn, freqFactors);
    }

    /**
     * The context the model is made for: its {@code context_length}, or, where RoPE scaling extends a shorter
     * trained context by a factor, that factor times the trained context if it is longer.
     */
    public int modelContext() {
        if (ropeScaling == Rope.Scaling.NONE) return contextLength;
        long extended = Math.round(ropeScalingFactor * ropeOriginalContext);
        return (int) Math.min(1 << 24, Math.max(contextLength, extended));
    }

    /** This configuration with other RoPE parameters (the command line's overrides). */
    public ModelConfig withRope(double base, Rope.Scaling scaling, double factor, int originalContext, double attnFactor,
                                double extFactor, double betaFast, double betaSlow) {
        return new ModelConfig(arch, embeddingLength, blockCount, headCount, kvHeadCount, headDim, valueDim, ropeDim, base,
                scaling, factor, originalContext, attnFactor, rmsEps, expertCount, expertUsedCount, normalizeTopK,
                expertWeightsScale, contextLength, slidingWindow, gating, leadingDenseBlocks, expertGroupCount, expertGroupUsedCount,
                mla, ropeYarnLogMultiplier, extFactor, betaFast, betaSlow);
    }

    /** First key position visible from {@code pos} in {@code layer}. */
    public int attentionStart(int layer, int pos) {
        return arch.usesSlidingWindow(layer) ? Math.max(0, pos - slidingWindow + 1) : 0;
    }
}
