package io.moe4j.tools.synth;

import io.moe4j.Moe4jException;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Shapes of real models (from their Hugging Face config.json) and tiny ones for tests. Any value can be overridden
 * afterwards (e.g. fewer layers to fit a machine).
 */
public final class Presets {
    private static final Map<String, ModelShape> ALL = new LinkedHashMap<>();

    static {
        // OLMoE-1B-7B-0924: 64 experts of 1024, top-8 (llama.cpp keeps the expert size in feed_forward_length).
        add(new ModelShape("olmoe", "olmoe-1b-7b", 50304, 2048, 16, 16, 16, 128, 1024, 64, 8, 0, 0, 10000, 1e-5f, 4096, 0, 0, 0, false));
        // Qwen3-30B-A3B: 128 experts of 768, top-8, GQA 32/4 heads of 128.
        add(new ModelShape("qwen3moe", "qwen3-30b-a3b", 151936, 2048, 48, 32, 4, 128, 6144, 128, 8, 768, 0, 1e6, 1e-6f, 40960, 0, 0, 0, false));
        // Mixtral-8x7B-v0.1: llama with 8 experts of 14336, top-2.
        add(new ModelShape("llama", "mixtral-8x7b", 32000, 4096, 32, 32, 8, 128, 14336, 8, 2, 0, 0, 1e6, 1e-5f, 32768, 0, 0, 0, false));
        // gpt-oss-20b / 120b: 64 heads of 64, 8 KV heads, experts of 2880, top-4, SWA 128 on even layers, YaRN 32.
        add(new ModelShape("gpt-oss", "gpt-oss-20b", 201088, 2880, 24, 64, 8, 64, 2880, 32, 4, 2880, 0, 150000, 1e-5f, 131072, 128, 32, 4096, false));
        add(new ModelShape("gpt-oss", "gpt-oss-120b", 201088, 2880, 36, 64, 8, 64, 2880, 128, 4, 2880, 0, 150000, 1e-5f, 131072, 128, 32, 4096, false));
        // Qwen1.5-MoE-A2.7B: 60 experts of 1408, top-4, plus a shared expert of 5632.
        add(new ModelShape("qwen2moe", "qwen1.5-moe-a2.7b", 151936, 2048, 24, 16, 16, 128, 5632, 60, 4, 1408, 5632, 1e6, 1e-6f, 8192, 0, 0, 0, false));
        // Qwen3-4B: dense, tied embeddings.
        add(new ModelShape("qwen3", "qwen3-4b", 151936, 2560, 36, 32, 8, 128, 9728, 0, 0, 0, 0, 1e6, 1e-6f, 40960, 0, 0, 0, true));
        // Tiny shapes for tests, one per architecture.
        add(new ModelShape("llama", "tiny", 512, 64, 2, 4, 2, 16, 128, 4, 2, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape("llama", "tiny-dense", 512, 64, 2, 4, 2, 16, 128, 0, 0, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape("qwen2", "tiny-qwen2", 512, 64, 2, 4, 2, 16, 128, 0, 0, 0, 0, 1e6, 1e-6f, 256, 0, 0, 0, true));
        add(new ModelShape("qwen3", "tiny-qwen3", 512, 64, 2, 4, 2, 32, 128, 0, 0, 0, 0, 1e6, 1e-6f, 256, 0, 0, 0, true));
        add(new ModelShape("qwen3moe", "tiny-qwen3moe", 512, 64, 2, 4, 2, 32, 128, 8, 2, 64, 0, 1e6, 1e-6f, 256, 0, 0, 0, false));
        add(new ModelShape("qwen2moe", "tiny-qwen2moe", 512, 64, 2, 4, 2, 16, 128, 4, 2, 64, 128, 1e6, 1e-6f, 256, 0, 0, 0, false));
        add(new ModelShape("olmoe", "tiny-olmoe", 512, 64, 2, 4, 4, 16, 64, 8, 2, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape("gpt-oss", "tiny-gpt-oss", 512, 64, 2, 4, 2, 32, 64, 4, 2, 64, 0, 150000, 1e-5f, 512, 16, 8, 64, false));
    }

    private Presets() {
    }

    private static void add(ModelShape s) {
        ALL.put(s.name(), s.validate());
    }

    public static Map<String, ModelShape> all() {
        return Collections.unmodifiableMap(ALL);
    }

    public static ModelShape get(String name) {
        ModelShape s = ALL.get(name);
        if (s == null) throw new Moe4jException("unknown preset '" + name + "' (presets: " + String.join(", ", ALL.keySet()) + ")");
        return s;
    }

    /**
     * The dense baseline of a MoE shape: same depth, width and attention, one FFN whose parameters match the MoE's
     * active (top-k experts plus the shared one) or total (all experts) FFN parameters, its size rounded to a multiple
     * of {@code multiple}. Qwen3-MoE becomes Qwen3; every other architecture becomes llama (llama.cpp has no dense
     * OLMoE, Qwen2-MoE or gpt-oss), which keeps the parameter count but not sinks, biases or the sliding window.
     */
    public static ModelShape denseEquivalent(ModelShape moe, boolean total, int multiple) {
        if (!moe.isMoe()) throw new Moe4jException("--dense-equivalent needs a MoE shape, " + moe.name() + " is dense");
        long hidden = total ? (long) moe.experts() * moe.expertHidden() + moe.sharedFf()
                : (long) moe.topK() * moe.expertHidden() + moe.sharedFf();
        long ff = Math.max(multiple, Math.round((double) hidden / multiple) * multiple);
        ModelShape.Builder b = moe.toBuilder();
        b.arch = moe.arch().equals("qwen3moe") ? "qwen3" : "llama";
        b.name = moe.name() + "-dense-" + (total ? "total" : "active");
        b.ff = Math.toIntExact(ff);
        b.experts = 0;
        b.topK = 0;
        b.expertFf = 0;
        b.sharedFf = 0;
        b.slidingWindow = 0;
        b.yarnFactor = 0;
        b.yarnOrigCtx = 0;
        return b.build().validate();
    }
}
