package io.moe4j.tools.synth;

import io.moe4j.Moe4jException;
import io.moe4j.model.arch.Architectures;
import io.moe4j.model.arch.DeepSeek2;
import io.moe4j.model.arch.GptOss;
import io.moe4j.model.arch.Llama;
import io.moe4j.model.arch.Olmoe;
import io.moe4j.model.arch.Qwen2;
import io.moe4j.model.arch.Qwen2Moe;
import io.moe4j.model.arch.Qwen3;

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
        String llama = Llama.SPEC.name(), qwen2 = Qwen2.SPEC.name(), qwen3 = Qwen3.DENSE.name(), qwen3moe = Qwen3.MOE.name();
        String qwen2moe = Qwen2Moe.SPEC.name(), olmoe = Olmoe.SPEC.name(), gptOss = GptOss.SPEC.name(), ds = DeepSeek2.SPEC.name();
        // OLMoE-1B-7B-0924: 64 experts of 1024, top-8 (llama.cpp keeps the expert size in feed_forward_length).
        add(new ModelShape(olmoe, "olmoe-1b-7b", 50304, 2048, 16, 16, 16, 128, 1024, 64, 8, 0, 0, 10000, 1e-5f, 4096, 0, 0, 0, false));
        // Qwen3-30B-A3B: 128 experts of 768, top-8, GQA 32/4 heads of 128.
        add(new ModelShape(qwen3moe, "qwen3-30b-a3b", 151936, 2048, 48, 32, 4, 128, 6144, 128, 8, 768, 0, 1e6, 1e-6f, 40960, 0, 0, 0, false));
        // Mixtral-8x7B-v0.1: llama with 8 experts of 14336, top-2.
        add(new ModelShape(llama, "mixtral-8x7b", 32000, 4096, 32, 32, 8, 128, 14336, 8, 2, 0, 0, 1e6, 1e-5f, 32768, 0, 0, 0, false));
        // gpt-oss-20b / 120b: 64 heads of 64, 8 KV heads, experts of 2880, top-4, SWA 128 on even layers, YaRN 32.
        add(new ModelShape(gptOss, "gpt-oss-20b", 201088, 2880, 24, 64, 8, 64, 2880, 32, 4, 2880, 0, 150000, 1e-5f, 131072, 128, 32, 4096, false));
        add(new ModelShape(gptOss, "gpt-oss-120b", 201088, 2880, 36, 64, 8, 64, 2880, 128, 4, 2880, 0, 150000, 1e-5f, 131072, 128, 32, 4096, false));
        // Qwen1.5-MoE-A2.7B: 60 experts of 1408, top-4, plus a shared expert of 5632.
        add(new ModelShape(qwen2moe, "qwen1.5-moe-a2.7b", 151936, 2048, 24, 16, 16, 128, 5632, 60, 4, 1408, 5632, 1e6, 1e-6f, 8192, 0, 0, 0, false));
        // Qwen3-4B: dense, tied embeddings.
        add(new ModelShape(qwen3, "qwen3-4b", 151936, 2560, 36, 32, 8, 128, 9728, 0, 0, 0, 0, 1e6, 1e-6f, 40960, 0, 0, 0, true));
        // DeepSeek-V2-Lite: latent attention without a q low-rank (plain attn_q), kv rank 512, heads of 128 + 64 roped
        // and values of 128; the first block dense (10944), then 64 experts of 1408, top-6, softmax scores, plus 2
        // shared experts; YaRN x40 from 4096 with mscale_all_dim 0.707.
        add(new ModelShape(ds, "deepseek-v2-lite", 102400, 2048, 27, 16, 16, 192, 10944, 64, 6, 1408, 2 * 1408, 10000, 1e-6f,
                163840, 0, 40, 4096, false, new ModelShape.Mla(0, 512, 128, 64, 128, 0.1 * 0.707),
                new ModelShape.Routing(1, 1, 1, false, false, 1.0)));
        // DeepSeek-V3 (and R1): q rank 1536, 128 heads, the first 3 blocks dense (18432), then 256 experts of 2048 in 8
        // groups (top-8 from the best 4 groups), sigmoid scores with a selection bias, renormalised and scaled by 2.5,
        // one shared expert; YaRN x40 from 4096 with mscale_all_dim 1.
        add(new ModelShape(ds, "deepseek-v3", 129280, 7168, 61, 128, 128, 192, 18432, 256, 8, 2048, 2048, 10000, 1e-6f,
                163840, 0, 40, 4096, false, new ModelShape.Mla(1536, 512, 128, 64, 128, 0.1 * 1.0),
                new ModelShape.Routing(3, 8, 4, true, true, 2.5)));
        // Tiny shapes for tests, one per architecture.
        add(new ModelShape(llama, "tiny", 512, 64, 2, 4, 2, 16, 128, 4, 2, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape(llama, "tiny-dense", 512, 64, 2, 4, 2, 16, 128, 0, 0, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape(qwen2, "tiny-qwen2", 512, 64, 2, 4, 2, 16, 128, 0, 0, 0, 0, 1e6, 1e-6f, 256, 0, 0, 0, true));
        add(new ModelShape(qwen3, "tiny-qwen3", 512, 64, 2, 4, 2, 32, 128, 0, 0, 0, 0, 1e6, 1e-6f, 256, 0, 0, 0, true));
        add(new ModelShape(qwen3moe, "tiny-qwen3moe", 512, 64, 2, 4, 2, 32, 128, 8, 2, 64, 0, 1e6, 1e-6f, 256, 0, 0, 0, false));
        add(new ModelShape(qwen2moe, "tiny-qwen2moe", 512, 64, 2, 4, 2, 16, 128, 4, 2, 64, 128, 1e6, 1e-6f, 256, 0, 0, 0, false));
        add(new ModelShape(olmoe, "tiny-olmoe", 512, 64, 2, 4, 4, 16, 64, 8, 2, 0, 0, 10000, 1e-5f, 256, 0, 0, 0, false));
        add(new ModelShape(gptOss, "tiny-gpt-oss", 512, 64, 2, 4, 2, 32, 64, 4, 2, 64, 0, 150000, 1e-5f, 512, 16, 8, 64, false));
        // the golden deepseek2 case's shape: DeepSeek-V3's design (q low-rank, groups, sigmoid scores) in miniature
        add(new ModelShape(ds, "tiny-deepseek2", 512, 128, 2, 4, 4, 48, 256, 16, 4, 64, 64, 10000, 1e-6f, 163840, 0, 40, 4096, false,
                new ModelShape.Mla(64, 64, 32, 16, 32, 0.1), new ModelShape.Routing(1, 4, 2, true, true, 2.5)));
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
     * of {@code multiple}. The architecture becomes {@link Architectures#denseCounterpart}'s (Qwen3 for Qwen3-MoE,
     * llama for the others), which keeps the parameter count but not sinks, biases, the sliding window or latent
     * attention.
     */
    public static ModelShape denseEquivalent(ModelShape moe, boolean total, int multiple) {
        if (!moe.isMoe()) throw new Moe4jException("--dense-equivalent needs a MoE shape, " + moe.name() + " is dense");
        long hidden = total ? (long) moe.experts() * moe.expertHidden() + moe.sharedFf()
                : (long) moe.topK() * moe.expertHidden() + moe.sharedFf();
        long ff = Math.max(multiple, Math.round((double) hidden / multiple) * multiple);
        ModelShape.Builder b = moe.toBuilder();
        b.arch = Architectures.denseCounterpart(moe.architecture()).name();
        b.name = moe.name() + "-dense-" + (total ? "total" : "active");
        b.ff = Math.toIntExact(ff);
        b.experts = 0;
        b.topK = 0;
        b.expertFf = 0;
        b.sharedFf = 0;
        b.slidingWindow = 0;
        b.yarnFactor = 0;
        b.yarnOrigCtx = 0;
        b.mla = null;
        b.routing = null;
        return b.build().validate();
    }
}
