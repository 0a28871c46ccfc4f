package io.moe4j.tools;

import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.arch.Architectures;
import io.moe4j.model.arch.DeepSeek2;
import io.moe4j.model.arch.Llama;
import io.moe4j.model.arch.Qwen2;
import io.moe4j.model.arch.Qwen3;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine's architecture table as weights-tools reads it, and that nothing else names architectures. */
class ArchitectureTableTest {

    @Test
    void everyHuggingFaceNameLeadsBackToItsArchitecture() {
        Set<String> classes = new HashSet<>(), names = new HashSet<>();
        for (Architecture a : Architectures.all()) {
            assertTrue(names.add(a.name()), "architecture " + a.name() + " twice");
            for (FileLayout.HfClass c : a.files().hf().classes()) {
                assertTrue(classes.add(c.architecture()), c.architecture() + " twice");
                assertSame(a, Architectures.byHfName(c.architecture(), null), c.architecture());
                assertSame(a, Architectures.byHfName("UnknownForCausalLM", c.modelType()), c.modelType());
                assertSame(c, Architectures.hfClass(c.architecture(), c.modelType()));
            }
        }
        assertNull(Architectures.byHfName("BertModel", "bert"));
    }

    @Test
    void exportPicksTheClassThatFitsTheModel() {
        FileLayout llama = Llama.SPEC.files(), ds = DeepSeek2.SPEC.files();
        assertEquals("LlamaForCausalLM", llama.exportClass(false, false).architecture());
        assertEquals("MixtralForCausalLM", llama.exportClass(true, false).architecture());
        assertEquals("DeepseekV2ForCausalLM", ds.exportClass(true, false).architecture());
        assertEquals("DeepseekV3ForCausalLM", ds.exportClass(true, true).architecture());
        assertSame(Qwen3.MOE, Architectures.withExperts(Qwen3.DENSE));
        assertSame(Llama.SPEC, Architectures.withExperts(Llama.SPEC));
        assertNull(Architectures.withExperts(Qwen2.SPEC));
        assertSame(Qwen3.DENSE, Architectures.denseCounterpart(Qwen3.MOE));
        assertSame(Llama.SPEC, Architectures.denseCounterpart(DeepSeek2.SPEC));
    }

    /**
     * The table is the one place that spells an architecture's name: elsewhere code compares with its constants.
     * Tokenizer code is left out, since tokenizer model and pre-tokenizer names ("llama", "qwen2") are other names
     * that happen to be spelt the same.
     */
    @Test
    void architectureNamesAreSpeltOnlyInTheTable() throws IOException {
        List<String> found = new ArrayList<>();
        int scanned = 0;
        for (String module : new String[]{"engine", "weights-tools", "bench"}) {
            Path root = Path.of("..", module, "src", "main", "java");
            if (!Files.isDirectory(root)) continue;
            try (Stream<Path> files = Files.walk(root)) {
                for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                    String path = f.toString().replace('\\', '/');
                    if (path.contains("/model/arch/") || path.contains("/tokenizer/") || path.endsWith("TokenizerFiles.java")
                            || path.contains("/vocab/")) {
                        continue;
                    }
                    List<String> lines = Files.readAllLines(f);
                    scanned++;
                    for (int i = 0; i < lines.size(); i++) {
                        for (String name : Architectures.names()) {
                            if (lines.get(i).contains('"' + name + '"') && !lines.get(i).contains("tokenizer.ggml.model")) {
                                found.add(path + ":" + (i + 1) + ": \"" + name + "\"");
                            }
                        }
                    }
                }
            }
        }
        assertTrue(scanned > 100, "only " + scanned + " source files found from " + Path.of("").toAbsolutePath());
        assertEquals(List.of(), found);
    }
}
