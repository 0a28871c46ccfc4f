package io.moe4j.tools;

import io.moe4j.SharedData;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Cases of ../shared/golden/manifest.json as the acceptance rules of its README use them. */
public final class GoldenCases {
    private GoldenCases() {
    }

    public static JsonNode byId(String id) {
        try {
            JsonNode m = new ObjectMapper().readTree(SharedData.golden().resolve("manifest.json").toFile());
            for (JsonNode c : m.get("cases")) if (c.get("id").asText().equals(id)) return c;
            throw new AssertionError("no golden case " + id);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode arr) {
        int[] r = new int[arr.size()];
        for (int i = 0; i < r.length; i++) r[i] = arr.get(i).asInt();
        return r;
    }

    public static float[] floats(JsonNode c, String field) {
        try {
            byte[] b = Files.readAllBytes(SharedData.golden().resolve(c.get(field).asText()));
            float[] f = new float[b.length / 4];
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
            return f;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Our logits (F32 KV cache, one batch) on {@code model} at the case's stored positions. */
    public static float[] logits(JsonNode c, Path model) {
        int[] tokens = ints(c.get("prompt_token_ids"));
        int[] positions = ints(c.get("positions"));
        int vocab = c.get("n_vocab").asInt();
        float[] all = Logits.of(model, tokens);
        float[] stored = new float[positions.length * vocab];
        for (int i = 0; i < positions.length; i++) System.arraycopy(all, positions[i] * vocab, stored, i * vocab, vocab);
        return stored;
    }

    /** L = max(1, max|logit| / 5) of the golden README. */
    public static double logitScale(JsonNode c) {
        return Math.max(1.0, Logits.maxAbs(floats(c, "logits_file_kv_f32")) / 5.0);
    }

    /** Rule 2 of the golden README: the bound on max |ours - llama.cpp (F32 KV)|. */
    public static double rule2Bound(JsonNode c) {
        return 2 * c.get("reference_exact_vs_llamacpp_kvf32_max_abs").asDouble() + 1e-3 * logitScale(c);
    }
}
