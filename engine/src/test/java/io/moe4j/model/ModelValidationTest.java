package io.moe4j.model;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Well-formed GGUF files that do not describe a model we can run get errors that name the problem. */
class ModelValidationTest {
    @TempDir
    Path tmp;

    /** Copies a golden model, changing metadata and leaving out some tensors. */
    Path variant(String name, Consumer<Map<String, GgufValue>> editMetadata, Predicate<String> dropTensor) {
        Path src = SharedData.golden().resolve("models/llama_moe-f32.gguf");
        Path dst = tmp.resolve(name + ".gguf");
        try (GgufFile f = GgufFile.open(src)) {
            Map<String, GgufValue> md = new LinkedHashMap<>(f.metadata().asMap());
            editMetadata.accept(md);
            try (GgufWriter w = GgufWriter.create(dst, md)) {
                for (GgufTensor t : f.tensors().values()) if (!dropTensor.test(t.name())) w.addTensor(t.name(), t.type(), t.dims());
                for (GgufTensor t : f.tensors().values()) if (!dropTensor.test(t.name())) w.writeData(t.name(), t.data());
                w.finish();
            }
        }
        return dst;
    }

    String loadError(Path p) {
        return assertThrows(ModelFormatException.class, () -> Model.load(p).close()).getMessage();
    }

    @Test
    void unknownArchitectureListsTheSupportedOnes() {
        String msg = loadError(variant("mamba", md -> md.put("general.architecture", GgufValue.of("mamba")), n -> false));
        assertTrue(msg.contains("'mamba' is not supported") && msg.contains("qwen3moe") && msg.contains("gpt-oss"), msg);
    }

    @Test
    void missingTensorIsNamed() {
        String msg = loadError(variant("nok", md -> {
        }, n -> n.equals("blk.1.attn_k.weight")));
        assertTrue(msg.contains("'blk.1.attn_k.weight' is missing"), msg);
    }

    @Test
    void shapeThatDisagreesWithHyperParametersIsNamed() {
        String msg = loadError(variant("heads", md -> md.put("llama.attention.head_count_kv", GgufValue.ofU32(4)), n -> false));
        assertTrue(msg.contains("attn_k.weight") && msg.contains("expected [256, 128]"), msg);
    }

    @Test
    void missingRequiredKeyIsNamed() {
        String msg = loadError(variant("nolayers", md -> md.remove("llama.block_count"), n -> false));
        assertTrue(msg.contains("'llama.block_count' is missing"), msg);
    }

    @Test
    void absurdExpertCountsAreRejected() {
        String msg = loadError(variant("experts", md -> md.put("llama.expert_used_count", GgufValue.ofU32(9)), n -> false));
        assertTrue(msg.contains("expert_used_count 9"), msg);
    }

    @Test
    void unsupportedRopeScalingIsNamed() {
        String msg = loadError(variant("rope", md -> md.put("llama.rope.scaling.type", GgufValue.of("longrope")), n -> false));
        assertTrue(msg.contains("'longrope' is not supported"), msg);
    }
}
