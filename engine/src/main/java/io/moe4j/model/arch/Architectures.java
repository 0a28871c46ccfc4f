package io.moe4j.model.arch;

import io.moe4j.gguf.ModelFormatException;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;

import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The architectures moe4j runs, by their {@code general.architecture} name. */
public final class Architectures {
    private static final Map<String, Architecture> BY_NAME = new LinkedHashMap<>();

    static {
        for (Architecture a : new Architecture[]{Llama.SPEC, Qwen2.SPEC, Qwen3.DENSE, Qwen3.MOE, Qwen2Moe.SPEC, Olmoe.SPEC, GptOss.SPEC, DeepSeek2.SPEC}) {
            BY_NAME.put(a.name(), a);
        }
    }

    private Architectures() {
    }

    public static Architecture byName(String name, String source) {
        Architecture a = BY_NAME.get(name);
        if (a == null) {
            throw new ModelFormatException(source + ": architecture '" + name + "' is not supported (supported: "
                    + String.join(", ", BY_NAME.keySet()) + ")");
        }
        return a;
    }

    public static Iterable<String> names() {
        return BY_NAME.keySet();
    }

    public static Collection<Architecture> all() {
        return Collections.unmodifiableCollection(BY_NAME.values());
    }

    /**
     * The architecture of a Hugging Face config.json: its {@code architectures[0]} class if a table entry names it,
     * else its {@code model_type}; null if neither is known.
     */
    public static Architecture byHfName(String hfClass, String modelType) {
        for (Architecture a : BY_NAME.values()) {
            for (FileLayout.HfClass c : a.files().hf().classes()) if (c.architecture().equals(hfClass)) return a;
        }
        for (Architecture a : BY_NAME.values()) {
            for (FileLayout.HfClass c : a.files().hf().classes()) if (c.modelType().equals(modelType)) return a;
        }
        return null;
    }

    /** The Hugging Face class of a config.json, as {@link #byHfName} finds it, or null. */
    public static FileLayout.HfClass hfClass(String hfClass, String modelType) {
        Architecture a = byHfName(hfClass, modelType);
        if (a == null) return null;
        for (FileLayout.HfClass c : a.files().hf().classes()) if (c.architecture().equals(hfClass)) return c;
        for (FileLayout.HfClass c : a.files().hf().classes()) if (c.modelType().equals(modelType)) return c;
        return null;
    }

    /**
     * The dense architecture a MoE one is compared with: Qwen3-MoE's is Qwen3, every other's is llama (llama.cpp has
     * no dense OLMoE, Qwen2-MoE, gpt-oss or DeepSeek2).
     */
    public static Architecture denseCounterpart(Architecture moe) {
        return Qwen3.MOE.equals(moe) ? Qwen3.DENSE : Llama.SPEC;
    }

    /** The architecture a dense model becomes when its FFN is copied into experts, or null if it has none. */
    public static Architecture withExperts(Architecture dense) {
        if (Qwen3.DENSE.equals(dense)) return Qwen3.MOE;
        return dense.files().experts() == FileLayout.Experts.OPTIONAL ? dense : null;
    }
}
