package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.Model;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvType;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.ModelStats;
import io.moe4j.tools.Logits;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.synth.ModelShape;
import io.moe4j.tools.synth.Presets;
import io.moe4j.tools.synth.Synth;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The DeepSeek family in weights-tools: the presets' published shapes, the latent KV cache of a DeepSeek-V3-shaped
 * model, active bytes with dense leading blocks and shared experts, and export to / convert from
 * DeepseekV2ForCausalLM and DeepseekV3ForCausalLM folders.
 */
class DeepSeekToolsTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 40, 300, 7, 99, 256, 3, 500, 42, 17};

    /**
     * A preset with its attention and routing but small widths: a vocabulary of 512, an embedding of 256, dense FFNs
     * of 512, and the given depth, heads and experts.
     */
    static ModelShape.Builder narrowed(String preset, int layers, int heads, int experts, int expertFf, int sharedFf) {
        ModelShape.Builder b = Presets.get(preset).toBuilder();
        b.name = preset + "-shaped";
        b.vocab = 512;
        b.embd = 256;
        b.ff = 512;
        b.ctx = 8192;
        b.layers = layers;
        b.heads = heads;
        b.kvHeads = heads;
        b.experts = experts;
        b.expertFf = expertFf;
        b.sharedFf = sharedFf;
        return b;
    }

    /** DeepSeek-V2-Lite's design with small widths: no q low-rank, softmax scores, one group, two shared experts. */
    static ModelShape liteShaped() {
        ModelShape.Builder b = narrowed("deepseek-v2-lite", 3, 4, 8, 256, 2 * 256);
        b.topK = 2;
        b.headDim = 64 + 32;
        b.mla = new ModelShape.Mla(0, 256, 64, 32, 64, 0.1 * 0.707);
        return b.build().validate();
    }

    private Path synth(ModelShape s, FileType type) {
        Path p = tmp.resolve(s.name() + "-" + type + ".gguf");
        Synth.write(new Synth.Spec(s, type, null, 5), p, 2, true);
        return p;
    }

    /** The model as a Hugging Face folder, in one shard. */
    private Path exported(Path model) {
        Path hf = tmp.resolve("hf");
        HfExporter.export(model, hf, new HfExporter.Settings(null, 1L << 40, true));
        return hf;
    }

    @Test
    void presetsHaveThePublishedParameterCounts() {
        // DeepSeek-V2-Lite: 15.7B parameters, 2.4B active; DeepSeek-V3: 671B, 37B active (the papers' figures, whose
        // active count leaves out the embedding table, as ModelStats does)
        ModelShape lite = Presets.get("deepseek-v2-lite"), v3 = Presets.get("deepseek-v3");
        assertEquals(15.7e9, lite.totalParams(), 0.02 * 15.7e9);
        assertEquals(2.4e9, lite.activeParams() - (double) lite.vocab() * lite.embd(), 0.05 * 2.4e9);
        assertEquals(671e9, v3.totalParams(), 0.02 * 671e9);
        assertEquals(37e9, v3.activeParams() - (double) v3.vocab() * v3.embd(), 0.05 * 37e9);
        assertEquals(0, lite.mla().qLoraRank());
        assertEquals(1536, v3.mla().qLoraRank());
        assertTrue(v3.routing().sigmoid() && !lite.routing().sigmoid());
    }

    /**
     * The reason latent attention exists: a DeepSeek-V3-shaped model (its attention sizes, fewer layers, narrower
     * FFNs, a small vocabulary) caches kv_lora_rank + qk_rope_head_dim values per token and layer.
     */
    @Test
    void kvBytesPerTokenOfADeepSeekV3ShapedModelAreTheLatentRow() {
        ModelShape.Builder b = narrowed("deepseek-v3", 4, 32, 16, 64, 64);
        ModelShape s = b.build().validate();
        assertEquals(3, s.leadingDense());
        Path model = synth(s, FileType.Q8_0);
        int row = 512 + 64;
        try (Model m = Model.load(model)) {
            int context = 4096;
            for (KvType t : new KvType[]{KvType.F16, KvType.F32, KvType.Q8_0}) {
                double perElement = (double) t.bytesFor(row) / row; // Q8_0: 34 bytes per block of 32
                double expected = s.layers() * row * perElement;
                double actual = (double) m.kvBytes(context, t) / context;
                assertEquals(expected, actual, 0.05 * expected, t + " bytes per token");
            }
        }
    }

    /**
     * Active parameters and decode bytes (what {@code inspect} prints) count the dense leading blocks, the shared
     * experts and every latent attention tensor in full and k of the routed experts: they agree with the shape's own
     * count, which adds the blocks up from the hyper-parameters.
     */
    @Test
    void activeBytesCountDenseBlocksSharedExpertsAndLatentAttention() {
        ModelShape s = liteShaped();
        Path model = synth(s, FileType.F32);
        try (GgufFile f = GgufFile.open(model)) {
            ModelConfig c = Logits.config(model);
            ModelStats st = ModelStats.of(f, c);
            long small = 0; // norms and the selection bias, which the shape's count leaves out
            for (var t : f.tensors().values()) if (t.dims().length == 1) small += t.elementCount();
            // the shape counts the untied embedding table as active; decoding reads one row of it
            assertEquals(s.activeParams() - (long) s.vocab() * s.embd(), st.activeParams() - small);
            assertEquals(s.totalParams(), st.totalParams() - small);
            long routed = (long) (s.layers() - 1) * 3 * s.embd() * s.expertFf() * s.experts();
            assertEquals(routed, st.expertParams());
            long expectedBytes = 4 * (st.totalParams() - routed - (long) s.vocab() * s.embd()) + 4L * s.embd()
                    + 4 * routed * s.topK() / s.experts();
            assertEquals(expectedBytes, st.decodeBytesPerToken());
        }
    }

    /** A reduced DeepSeek-V2-Lite-shaped model with llama.cpp's Q4_K_M mix (as bench uses it) loads and computes. */
    @Test
    void q4KMixOfAV2LiteShapedModelRuns() {
        Path model = synth(liteShaped(), FileType.Q4_K_M);
        try (GgufFile f = GgufFile.open(model)) {
            assertEquals(GgmlType.Q4_K, f.tensor("blk.1.ffn_gate_exps.weight").type());
            // rows of qk_nope 64 are not whole Q4_K blocks: llama-quantize's fallback (Q5_0, which moe4j writes as Q8_0)
            assertEquals(GgmlType.Q8_0, f.tensor("blk.1.attn_k_b.weight").type());
        }
        for (float x : Logits.of(model, PROMPT)) assertTrue(Float.isFinite(x));
    }

    @Test
    void v2LiteShapedModelExportsAsDeepseekV2AndConvertsBack() throws Exception {
        Path src = synth(liteShaped(), FileType.F32), hf = exported(src), back = tmp.resolve("back.gguf");
        JsonNode c = HfConfig.readJson(hf.resolve("config.json"));
        assertEquals("DeepseekV2ForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("deepseek_v2", c.get("model_type").asText());
        assertTrue(c.get("q_lora_rank").isNull());
        assertEquals(256, c.get("kv_lora_rank").asInt());
        assertEquals(2, c.get("n_shared_experts").asInt());
        assertEquals(1, c.get("first_k_dense_replace").asInt());
        assertEquals("softmax", c.get("scoring_func").asText());
        assertFalse(c.get("norm_topk_prob").asBoolean());
        assertEquals(0.707, c.get("rope_scaling").get("mscale_all_dim").asDouble(), 1e-6);
        assertFalse(c.has("head_dim"));
        try (SafetensorsFile f = SafetensorsFile.open(hf.resolve("model.safetensors"))) {
            assertEquals(java.util.List.of(4L * (64 + 64), 256L),
                    java.util.Arrays.stream(f.tensors().get("model.layers.0.self_attn.kv_b_proj.weight").shape()).boxed().toList());
            assertNotNull(f.tensors().get("model.layers.1.mlp.shared_experts.gate_proj.weight"));
            assertNull(f.tensors().get("model.layers.1.mlp.gate.e_score_correction_bias"));
        }
        HfConverter.convert(hf, back, new HfConverter.Settings(null, null, false, 2, true));
        assertSameFile(src, back);
    }

    @Test
    void v3ShapedModelExportsAsDeepseekV3AndConvertsBack() throws Exception {
        Path src = synth(Presets.get("tiny-deepseek2"), FileType.Q8_0), hf = exported(src), back = tmp.resolve("back.gguf");
        JsonNode c = HfConfig.readJson(hf.resolve("config.json"));
        assertEquals("DeepseekV3ForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("sigmoid", c.get("scoring_func").asText());
        assertEquals("noaux_tc", c.get("topk_method").asText());
        assertEquals(4, c.get("n_group").asInt());
        assertEquals(2, c.get("topk_group").asInt());
        assertEquals(2.5, c.get("routed_scaling_factor").asDouble());
        assertTrue(c.get("norm_topk_prob").asBoolean());
        assertEquals(64, c.get("q_lora_rank").asInt());
        try (SafetensorsFile f = SafetensorsFile.open(hf.resolve("model.safetensors"))) {
            assertNotNull(f.tensors().get("model.layers.1.mlp.gate.e_score_correction_bias"));
            assertNotNull(f.tensors().get("model.layers.1.self_attn.q_a_layernorm.weight"));
        }
        HfConverter.convert(hf, back, new HfConverter.Settings(FileType.Q8_0, null, false, 2, true));
        assertSameFile(src, back);
    }

    /**
     * DeepSeek-V3's checkpoints hold a multi-token prediction layer after the last block, which convert leaves out as
     * llama.cpp's converter does; FP8 weights with block scales are refused with a message that says so.
     */
    @Test
    void predictionLayersAreLeftOutAndFp8IsRefused() throws Exception {
        Path src = synth(Presets.get("tiny-deepseek2"), FileType.F32), hf = exported(src), back = tmp.resolve("back.gguf");
        Path st = hf.resolve("model.safetensors"), cfg = hf.resolve("config.json");
        addTensor(st, "model.layers.2.self_attn.q_a_proj.weight");
        String config = java.nio.file.Files.readString(cfg);
        io.moe4j.Moe4jException e = org.junit.jupiter.api.Assertions.assertThrows(io.moe4j.Moe4jException.class,
                () -> HfConverter.convert(hf, back, new HfConverter.Settings(null, null, false, 2, true)));
        assertTrue(e.getMessage().contains("model.layers.2.self_attn.q_a_proj.weight"), e.getMessage());
        java.nio.file.Files.writeString(cfg, config.replace("\"num_hidden_layers\"", "\"num_nextn_predict_layers\" : 1,\n  \"num_hidden_layers\""));
        HfConverter.convert(hf, back, new HfConverter.Settings(null, null, false, 2, true));
        assertSameFile(src, back);

        addTensor(st, "model.layers.0.self_attn.q_a_proj.weight_scale_inv");
        e = org.junit.jupiter.api.Assertions.assertThrows(io.moe4j.Moe4jException.class,
                () -> HfConverter.convert(hf, tmp.resolve("fp8.gguf"), new HfConverter.Settings(null, null, false, 2, true)));
        assertTrue(e.getMessage().contains("FP8") && e.getMessage().contains("weight_scale_inv"), e.getMessage());
    }

    /** Rewrites a safetensors file with one more small F32 tensor. */
    private static void addTensor(Path file, String name) throws Exception {
        java.util.List<SafetensorsWriter.Tensor> all = new java.util.ArrayList<>();
        Path copy = file.resolveSibling("old.safetensors");
        java.nio.file.Files.move(file, copy);
        try (SafetensorsFile f = SafetensorsFile.open(copy)) {
            for (SafetensorsFile.Entry t : f.tensors().values()) {
                all.add(new SafetensorsWriter.Tensor(t.name(), t.dtype(), t.shape(), sink -> sink.write(t.data())));
            }
            all.add(new SafetensorsWriter.Tensor(name, DType.F32, new long[]{4, 4},
                    sink -> sink.write(java.lang.foreign.MemorySegment.ofArray(new byte[64]))));
            SafetensorsWriter.write(file, f.metadata(), all);
        }
        java.nio.file.Files.delete(copy);
    }

    /** Identical tensors, identical hyper-parameter metadata (the name aside) and identical logits. */
    private static void assertSameFile(Path a, Path b) {
        try (GgufFile x = GgufFile.open(a); GgufFile y = GgufFile.open(b)) {
            assertEquals(new java.util.TreeSet<>(x.tensors().keySet()), new java.util.TreeSet<>(y.tensors().keySet()));
            for (var t : x.tensors().values()) {
                var u = y.tensor(t.name());
                assertEquals(t.type(), u.type(), t.name());
                assertTrue(t.data().mismatch(u.data()) < 0, t.name() + " differs");
            }
            assertEquals(hparams(x), hparams(y));
        }
        Logits.assertSameModel(a, b, PROMPT);
    }

    private static Map<String, String> hparams(GgufFile f) {
        Map<String, String> m = new TreeMap<>();
        for (Map.Entry<String, GgufValue> e : f.metadata().asMap().entrySet()) {
            if (e.getKey().startsWith("deepseek2.") || e.getKey().equals("general.file_type")) {
                m.put(e.getKey(), e.getValue().type() + " " + e.getValue().describe());
            }
        }
        return m;
    }
}
