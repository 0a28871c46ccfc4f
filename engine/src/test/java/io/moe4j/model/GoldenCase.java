package io.moe4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.SharedData;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One case of ../shared/golden/manifest.json or manifest-deepseek2.json (the DeepSeek cases, same format) with its
 * files, as the acceptance rules of the golden README use it.
 */
public record GoldenCase(String id, JsonNode json, Path golden) {

    /** The cases of manifest.json and manifest-deepseek2.json. */
    public static List<GoldenCase> all() {
        return of("manifest.json", "manifest-deepseek2.json");
    }

    /** The long-context cases of manifest-long.json (16,384 tokens, YaRN; logits at a few positions). */
    public static List<GoldenCase> longContext() {
        return of("manifest-long.json");
    }

    private static List<GoldenCase> of(String... manifestFiles) {
        Path golden = SharedData.golden();
        try {
            List<GoldenCase> cases = new ArrayList<>();
            for (String file : manifestFiles) {
                JsonNode manifest = new ObjectMapper().readTree(golden.resolve(file).toFile());
                for (JsonNode c : manifest.get("cases")) cases.add(new GoldenCase(c.get("id").asText(), c, golden));
            }
            return cases;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static GoldenCase byId(String id) {
        return all().stream().filter(c -> c.id.equals(id)).findFirst().orElseThrow();
    }

    public Path modelPath() {
        return golden.resolve(json.get("model_file").asText()).normalize();
    }

    public int[] promptTokens() {
        return ints(json.get("prompt_token_ids"));
    }

    public int[] positions() {
        return ints(json.get("positions"));
    }

    public int vocab() {
        return json.get("n_vocab").asInt();
    }

    public float[] floats(String field) {
        return readFloats(golden.resolve(json.get(field).asText()));
    }

    public double number(String field) {
        return json.get(field).asDouble();
    }

    /** L = max(1, max|logit| / 5) of the golden README. */
    public double logitScale() {
        float max = 0;
        for (float f : floats("logits_file_kv_f32")) max = Math.max(max, Math.abs(f));
        return Math.max(1.0, max / 5.0);
    }

    /** The rows of {@code all} ({@code [n_tokens][n_vocab]} logits) at the positions this case stores. */
    public float[] storedRows(float[] all) {
        int[] positions = positions();
        int vocab = vocab();
        float[] stored = new float[positions.length * vocab];
        for (int i = 0; i < positions.length; i++) System.arraycopy(all, positions[i] * vocab, stored, i * vocab, vocab);
        return stored;
    }

    /** Rule 2 of the golden README: the bound on max |engine - llama.cpp (F32 KV)|. */
    public double rule2Bound() {
        return 2 * number("reference_exact_vs_llamacpp_kvf32_max_abs") + 1e-3 * logitScale();
    }

    public static int[] ints(JsonNode arr) {
        int[] r = new int[arr.size()];
        for (int i = 0; i < r.length; i++) r[i] = arr.get(i).asInt();
        return r;
    }

    /** The little-endian int32 file named by {@code field}. */
    public int[] ints(String field) {
        try {
            byte[] b = Files.readAllBytes(golden.resolve(json.get(field).asText()));
            int[] r = new int[b.length / 4];
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(r);
            return r;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static float[] readFloats(Path p) {
        try {
            byte[] b = Files.readAllBytes(p);
            float[] f = new float[b.length / 4];
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
            return f;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public String toString() {
        return id;
    }
}
