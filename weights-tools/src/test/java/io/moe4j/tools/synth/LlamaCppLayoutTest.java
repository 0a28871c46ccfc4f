package io.moe4j.tools.synth;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.quant.FileType;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What synth writes has the layout of a file llama.cpp made and loaded: the golden models of each architecture came
 * from llama.cpp's converter and quantizer, and llama.cpp computed their logits. Per architecture, synth's tiny preset
 * must carry the same tensors (names, rank, which dimensions equal the hyper-parameters, F32 for the 1-D ones), and
 * every hyper-parameter key the golden file has (llama.cpp reads its hyper-parameters from these keys; a missing
 * required one stops its loader).
 */
class LlamaCppLayoutTest {
    @TempDir
    Path tmp;

    /**
     * Keys compared: the architecture's hyper-parameters and the tokenizer keys every vocabulary has. Not compared:
     * where a file came from ({@code general.*}, {@code quantize.*}) and the keys of one tokenizer model only (the
     * golden files carry SentencePiece scores and special ids, synth a byte-level BPE vocabulary).
     */
    private static boolean compared(String key, String arch) {
        return key.startsWith(arch + ".") || key.equals("general.architecture") || key.equals("tokenizer.ggml.model")
                || key.equals("tokenizer.ggml.tokens") || key.equals("tokenizer.ggml.token_type")
                || key.equals("tokenizer.ggml.bos_token_id") || key.equals("tokenizer.ggml.eos_token_id");
    }

    @ParameterizedTest(name = "{0} vs {1}")
    @CsvSource({"tiny, llama_moe-f32", "tiny-qwen3moe, qwen3moe-q8_0", "tiny-qwen2moe, qwen2moe-q8_0", "tiny-olmoe, olmoe-q8_0",
            "tiny-gpt-oss, gpt_oss-mxfp4_moe", "tiny-deepseek2, deepseek2-f32"})
    void synthMatchesTheLayoutOfAFileLlamaCppMade(String preset, String golden) {
        Path reference = SharedData.golden().resolve("models").resolve(golden + ".gguf");
        Path out = tmp.resolve(preset + ".gguf");
        Synth.write(new Synth.Spec(Presets.get(preset), FileType.F32, null, 3), out, 2, true);
        try (GgufFile ref = GgufFile.open(reference); GgufFile ours = GgufFile.open(out)) {
            String arch = ref.metadata().getString("general.architecture");
            assertEquals(arch, ours.metadata().getString("general.architecture"));

            TreeSet<String> missingKeys = new TreeSet<>();
            for (String k : ref.metadata().keys()) {
                if (compared(k, arch) && !ours.metadata().has(k)) missingKeys.add(k);
            }
            assertTrue(missingKeys.isEmpty(), preset + " lacks metadata keys that " + golden + " has: " + missingKeys);

            Map<String, List<Set<String>>> refLayout = layout(ref), ourLayout = layout(ours);
            assertEquals(refLayout.keySet(), ourLayout.keySet(), preset + ": tensor names (blk.N folded)");
            for (Map.Entry<String, List<Set<String>>> e : refLayout.entrySet()) {
                List<Set<String>> want = e.getValue(), got = ourLayout.get(e.getKey());
                assertEquals(want.size(), got.size(), preset + ": rank of " + e.getKey());
                for (int i = 0; i < want.size(); i++) {
                    Set<String> common = new TreeSet<>(want.get(i));
                    common.retainAll(got.get(i));
                    assertTrue(want.get(i).isEmpty() && got.get(i).isEmpty() || !common.isEmpty(), preset + ": dimension " + i
                            + " of " + e.getKey() + " is " + want.get(i) + " in " + golden + " but " + got.get(i) + " in synth's");
                }
            }
            for (GgufTensor t : ours.tensors().values()) {
                if (t.dims().length == 1) assertEquals(GgmlType.F32, t.type(), preset + ": 1-D tensor " + t.name() + " must stay F32");
            }
        }
    }

    /**
     * Tensor name (layer number folded to N) → per dimension, the hyper-parameters (and products of heads and head
     * size) its length equals, so that files of different sizes compare: two files agree on a dimension when its
     * sets share a name.
     */
    private static Map<String, List<Set<String>>> layout(GgufFile f) {
        String arch = f.metadata().getString("general.architecture");
        Map<Long, Set<String>> names = new TreeMap<>();
        for (String key : f.metadata().keys()) {
            if (!key.startsWith(arch + ".")) continue;
            Object v = f.metadata().get(key).value();
            if (v instanceof Number n && !(v instanceof Float) && !(v instanceof Double) && n.longValue() > 1) {
                names.computeIfAbsent(n.longValue(), k -> new TreeSet<>()).add(key.substring(arch.length() + 1));
            }
        }
        long embd = f.metadata().getLong(arch + ".embedding_length"), heads = f.metadata().getLong(arch + ".attention.head_count");
        long kvHeads = f.metadata().getInt(arch + ".attention.head_count_kv", (int) heads);
        long headDim = f.metadata().getInt(arch + ".attention.key_length", (int) (embd / heads));
        names.computeIfAbsent(heads * headDim, k -> new TreeSet<>()).add("heads*head_dim");
        names.computeIfAbsent(kvHeads * headDim, k -> new TreeSet<>()).add("kv_heads*head_dim");
        names.computeIfAbsent((long) f.metadata().getStringArray("tokenizer.ggml.tokens").length, k -> new TreeSet<>()).add("vocab");
        Map<String, List<Set<String>>> out = new TreeMap<>();
        for (GgufTensor t : f.tensors().values()) {
            List<Set<String>> dims = new ArrayList<>();
            for (long d : t.dims()) dims.add(names.getOrDefault(d, Set.of()));
            out.putIfAbsent(t.name().replaceFirst("^blk\\.\\d+\\.", "blk.N."), dims);
        }
        return out;
    }
}
