package io.moe4j.model;

import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.Rope;

/**
 * Hyper-parameters of a model, read from {@code <arch>.*} metadata keys (llama.cpp's names and defaults).
 * Expert FFN sizes and the vocabulary size are taken from tensor shapes by {@link ModelWeights}.
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
        double yarnExtFactor,
        double yarnBetaFast,
        double yarnBetaSlow) {

    /** A configuration with llama.cpp's YaRN defaults (extrapolation mix 1, beta fast 32, beta slow 1). */
    public ModelConfig(Architecture arch, int embeddingLength, int blockCount, int headCount, int kvHeadCount, int headDim,
                       int valueDim, int ropeDim, double ropeBase, Rope.Scaling ropeScaling, double ropeScalingFactor,
                       int ropeOriginalContext, double ropeAttnFactor, float rmsEps, int expertCount, int expertUsedCount,
                       boolean normalizeTopK, float expertWeightsScale, int contextLength, int slidingWindow) {
        this(arch, embeddingLength, blockCount, headCount, kvHeadCount, headDim, valueDim, ropeDim, ropeBase, ropeScaling,
                ropeScalingFactor, ropeOriginalContext, ropeAttnFactor, rmsEps, expertCount, expertUsedCount, normalizeTopK,
                expertWeightsScale, contextLength, slidingWindow, 1.0, 32.0, 1.0);
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
        if (valueDim != headDim) {
            throw new ModelFormatException(src + ": key_length " + headDim + " != value_length " + valueDim + " is not supported");
        }
        int ropeDim = positive(md, p + "rope.dimension_count", md.getInt(p + "rope.dimension_count", headDim));
        if (ropeDim > headDim || ropeDim % 2 != 0) {
            throw new ModelFormatException(src + ": rope.dimension_count " + ropeDim + " must be even and at most the head size " + headDim);
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
        int window = md.getInt(p + "attention.sliding_window", 0);
        if (arch.slidingWindowPeriod() > 0 && window <= 0) {
            throw new ModelFormatException(src + ": " + arch.name() + " needs " + p + "attention.sliding_window");
        }
        return new ModelConfig(arch, nEmbd, nLayer, nHead, nKv, headDim, valueDim, ropeDim, base, scaling, factor, origCtx,
                attnFactor, eps, nExpert, nUsed, norm, scale, ctx, window, 1.0, betaFast, betaSlow);
    }

    private static int positive(GgufMetadata md, String key, int v) {
        if (v <= 0 || v > (1 << 24)) throw new ModelFormatException(md.source() + ": " + key + " = " + v + " is out of range");
        return v;
    }

    public boolean isMoe() {
        return expertCount > 0;
    }

    public int qDim() {
        return headCount * headDim;
    }

    public int kvDim() {
        return kvHeadCount * headDim;
    }

    /** RoPE for this model; {@code freqFactors} is the optional rope_freqs tensor (Llama 3.1 style), or null. */
    public Rope rope(float[] freqFactors) {
        return new Rope(arch.ropeStyle(), ropeDim, ropeBase, ropeScaling, ropeScalingFactor, ropeOriginalContext,
                yarnExtFactor, yarnBetaFast, yarnBetaSlow, ropeAttnFactor, freqFactors);
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
                expertWeightsScale, contextLength, slidingWindow, extFactor, betaFast, betaSlow);
    }

    /** First key position visible from {@code pos} in {@code layer}. */
    public int attentionStart(int layer, int pos) {
        return arch.usesSlidingWindow(layer) ? Math.max(0, pos - slidingWindow + 1) : 0;
    }
}
