package io.moe4j.model.arch;

import io.moe4j.gguf.ModelFormatException;
import io.moe4j.model.Architecture;

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
}
