package io.moe4j.tools.hf;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Logits;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.synth.Presets;
import io.moe4j.tools.synth.Synth;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** export and convert on synthetic models of every architecture, and their handling of bad input. */
class ConvertExportTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 40, 300, 7, 99, 256, 3, 500};

    private Path synth(String preset, FileType type, GgmlType experts) {
        Path p = tmp.resolve(preset + ".gguf");
        Synth.write(new Synth.Spec(Presets.get(preset), type, experts, 3), p, 2, true);
        return p;
    }

    private static void assertSameTensors(Path a, Path b) {
        try (GgufFile x = GgufFile.open(a); GgufFile y = GgufFile.open(b)) {
            assertEquals(x.tensors().keySet().stream().sorted().toList(), y.tensors().keySet().stream().sorted().toList());
            for (GgufTensor t : x.tensors().values()) {
                GgufTensor u = y.tensor(t.name());
                assertEquals(t.type(), u.type(), t.name());
                assertTrue(t.data().mismatch(u.data()) < 0, t.name() + " differs");
            }
            assertEquals(x.metadata().getString("tokenizer.ggml.pre", ""), y.metadata().getString("tokenizer.ggml.pre", ""));
            assertEquals(x.metadata().getString("tokenizer.chat_template", ""), y.metadata().getString("tokenizer.chat_template", ""));
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({"tiny, BF16, ", "tiny-dense, F16, ", "tiny-qwen2, BF16, ", "tiny-qwen3, F32, ", "tiny-qwen3moe, Q8_0, ", "tiny-qwen2moe, F32, ",
            "tiny-olmoe, F32, ", "tiny-gpt-oss, F32, ", "tiny-gpt-oss, Q8_0, MXFP4", "tiny-deepseek2, F32, ", "tiny-deepseek2, Q8_0, "})
    void everyArchitectureSurvivesExportAndConvert(String preset, String type, String experts) {
        GgmlType et = experts == null ? null : GgmlType.valueOf(experts);
        Path src = synth(preset, FileType.parse(type), et);
        Path hf = tmp.resolve("hf"), back = tmp.resolve("back.gguf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 200_000, true));
        FileType ft = type.equals("Q8_0") ? FileType.Q8_0 : null;
        HfConverter.convert(hf, back, new HfConverter.Settings(ft, et, false, 2, true));
        assertSameTensors(src, back);
        assertTrue(Files.isRegularFile(hf.resolve("config.json")));
        assertTrue(Files.isRegularFile(hf.resolve("tokenizer.json")));
        Logits.assertSameModel(src, back, PROMPT);
    }

    @Test
    void gptOssMxfp4ExpertsAreExportedAsHuggingFaceBlocks() throws Exception {
        Path src = synth("tiny-gpt-oss", FileType.Q8_0, GgmlType.MXFP4);
        Path hf = tmp.resolve("hf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 1L << 40, true));
        try (SafetensorsFile f = SafetensorsFile.open(hf.resolve("model.safetensors"))) {
            var blocks = f.tensors().get("model.layers.0.mlp.experts.gate_up_proj_blocks");
            assertEquals(DType.U8, blocks.dtype());
            assertEquals(List.of(4L, 128L, 2L, 16L), java.util.Arrays.stream(blocks.shape()).boxed().toList());
            assertEquals(DType.F32, f.tensors().get("model.layers.0.self_attn.q_proj.weight").dtype());
        }
        assertTrue(Files.readString(hf.resolve("config.json")).contains("\"mxfp4\""));
        // and the dequantized HF layout (transposed gate_up_proj) converts back to the same values
        Path hf2 = tmp.resolve("hf2"), back = tmp.resolve("back.gguf");
        HfExporter.export(src, hf2, new HfExporter.Settings(DType.F32, 1L << 40, false, true));
        try (SafetensorsFile f = SafetensorsFile.open(hf2.resolve("model.safetensors"))) {
            assertEquals(List.of(4L, 64L, 128L), java.util.Arrays.stream(f.tensors().get("model.layers.1.mlp.experts.gate_up_proj").shape()).boxed().toList());
        }
        HfConverter.convert(hf2, back, new HfConverter.Settings(FileType.Q8_0, GgmlType.MXFP4, false, 2, true));
        assertSameTensors(src, back);
    }

    @Test
    void badCheckpointsEndWithAClearMessageAndNoFile() throws Exception {
        Path src = synth("tiny", FileType.F32, null);
        Path hf = tmp.resolve("hf"), out = tmp.resolve("out.gguf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 100_000, true));
        assertTrue(Files.isRegularFile(hf.resolve("model.safetensors.index.json")));

        Path shard = hf.resolve("model-00002-of-" + String.format("%05d", countShards(hf)) + ".safetensors");
        Path aside = tmp.resolve("aside");
        Files.move(shard, aside);
        Moe4jException e = assertThrows(Moe4jException.class, () -> HfConverter.convert(hf, out, new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("missing") && e.getMessage().contains(shard.getFileName().toString()), e.getMessage());
        Files.move(aside, shard);

        Path cfg = hf.resolve("config.json");
        String config = Files.readString(cfg);
        Files.writeString(cfg, config.replace("\"MixtralForCausalLM\"", "\"BertModel\"").replace("\"mixtral\"", "\"bert\""));
        e = assertThrows(Moe4jException.class, () -> HfConverter.convert(hf, out, new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("unsupported architecture"), e.getMessage());

        Files.writeString(cfg, config.replace("\"hidden_size\" : 64", "\"hidden_size\" : 96"));
        e = assertThrows(Moe4jException.class, () -> HfConverter.convert(hf, out, new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("has shape"), e.getMessage());

        Files.delete(cfg);
        e = assertThrows(Moe4jException.class, () -> HfConverter.convert(hf, out, new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("config.json not found"), e.getMessage());

        e = assertThrows(Moe4jException.class, () -> HfConverter.convert(tmp.resolve("nope"), out, new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
        assertFalse(Files.exists(out));
        try (Stream<Path> s = Files.list(tmp)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "temporary files left behind");
        }
    }

    private static int countShards(Path hf) throws Exception {
        try (Stream<Path> s = Files.list(hf)) {
            return (int) s.filter(p -> p.getFileName().toString().matches("model-\\d+-of-\\d+\\.safetensors")).count();
        }
    }

    @Test
    void llama3RopeScalingBecomesRopeFreqs() throws Exception {
        float[] f = HfConfig.llama3RopeFactors(new double[]{8, 1, 4, 8192}, 500000, 128);
        // Llama 3.1 8B's factors (numpy float32 reproduction of the converter's torch code)
        float[] expected = {1.2074839f, 1.5534146f, 2.026313f, 2.69453f, 3.6842532f, 5.257327f};
        assertEquals(1f, f[28]);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], f[29 + i], 1e-6f * expected[i], "factor " + (29 + i));
        assertEquals(8f, f[35]);

        Path src = synth("tiny-dense", FileType.F32, null);
        Path hf = tmp.resolve("hf"), out = tmp.resolve("l3.gguf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 1L << 40, true));
        Path cfg = hf.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"rope_scaling\" : null",
                "\"rope_scaling\" : {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}"));
        HfConverter.convert(hf, out, new HfConverter.Settings(null, null, false, 1, true));
        try (GgufFile g = GgufFile.open(out)) {
            assertEquals(List.of(8L), java.util.Arrays.stream(g.tensor("rope_freqs.weight").dims()).boxed().toList());
        }
        for (float x : Logits.of(out, PROMPT)) assertTrue(Float.isFinite(x));
        Moe4jException e = assertThrows(Moe4jException.class, () -> HfExporter.export(out, tmp.resolve("hf2"), new HfExporter.Settings(null, 1L << 40, true)));
        assertTrue(e.getMessage().contains("rope_freqs"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("hf2")));
    }

    @Test
    void truncatedSafetensorsIsRefused() throws Exception {
        Path src = synth("tiny-dense", FileType.F32, null);
        Path hf = tmp.resolve("hf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 1L << 40, true));
        Path st = hf.resolve("model.safetensors");
        byte[] b = Files.readAllBytes(st);
        Files.write(st, java.util.Arrays.copyOf(b, b.length - 100));
        Moe4jException e = assertThrows(Moe4jException.class, () -> HfConverter.convert(hf, tmp.resolve("o.gguf"), new HfConverter.Settings(null, null, false, 1, true)));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }
}
