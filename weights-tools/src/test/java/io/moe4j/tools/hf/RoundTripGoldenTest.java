package io.moe4j.tools.hf;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.tools.Logits;
import io.moe4j.SharedData;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.quant.Quantizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every golden model → export → convert gives identical tensors (names, types, shapes, bytes), the same tokenizer and
 * identical logits. Quantized models are exported dequantized (gpt-oss MXFP4 experts natively) and converted back with
 * the type they were made with.
 */
class RoundTripGoldenTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267};

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "llama_moe-f32, , false", "llama_moe-f16, , false", "llama_moe-bf16, , false", "llama_moe_yarn_long-f16, , false",
            "llama_moe-q8_0, Q8_0, false", "llama_moe-q4_0, Q4_0, true", "llama_moe-q4_k_m, Q4_K, false", "llama_moe-q6_k, Q6_K, false",
            "llama_moe-mxfp4_moe, MXFP4, false", "qwen3moe-q8_0, Q8_0, false", "qwen2moe-q8_0, Q8_0, false", "olmoe-q8_0, Q8_0, false",
            "gpt_oss-mxfp4_moe, MXFP4, false", "deepseek2-f32, , false", "deepseek2-q8_0, Q8_0, false", "stories260K, , false"})
    void exportThenConvertGivesIdenticalTensorsAndLogits(String id, String type, boolean pure) {
        Path src = id.equals("stories260K") ? SharedData.models().resolve("stories260K.gguf") : SharedData.goldenModel(id);
        Path hf = tmp.resolve("hf"), back = tmp.resolve("back.gguf");
        HfExporter.export(src, hf, new HfExporter.Settings(null, 1 << 20, true));
        HfConverter.convert(hf, back, new HfConverter.Settings(type == null ? null : FileType.parse(type), null, pure, 2, true));
        try (GgufFile a = GgufFile.open(src); GgufFile b = GgufFile.open(back)) {
            assertEquals(new TreeSet<>(a.tensors().keySet()), new TreeSet<>(b.tensors().keySet()), "tensor names");
            for (GgufTensor t : a.tensors().values()) {
                GgufTensor u = b.tensor(t.name());
                assertEquals(t.type(), u.type(), t.name() + " type");
                assertArrayEquals(Quantizer.trimDims(t.dims()), Quantizer.trimDims(u.dims()), t.name() + " dims");
                long m = t.data().mismatch(u.data());
                assertTrue(m < 0, t.name() + " (" + t.type() + "): bytes differ at " + m);
            }
            for (String k : new String[]{"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
                Object x = a.metadata().get(k).value(), y = b.metadata().get(k).value();
                assertTrue(Arrays.deepEquals(new Object[]{x}, new Object[]{y}), k + " differs");
            }
            assertEquals(a.metadata().getInt("tokenizer.ggml.bos_token_id"), b.metadata().getInt("tokenizer.ggml.bos_token_id"));
            assertEquals(a.metadata().getInt("tokenizer.ggml.eos_token_id"), b.metadata().getInt("tokenizer.ggml.eos_token_id"));
        }
        Logits.assertSameModel(src, back, PROMPT);
    }
}
