package io.moe4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.kernels.KvType;
import io.moe4j.model.ContextOverflowException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The embedded generate API on the trained stories260K model: streaming, stops, sampling, errors. */
class GenerationTest {
    static Model model;
    static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        model = Model.load(SharedData.models().resolve("stories260K.gguf"));
        golden = new ObjectMapper().readTree(SharedData.models().resolve("stories260K.golden.json").toFile());
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    @Test
    void greedyGenerationReproducesLlama2cTokensAndStreamsTheSameText() {
        // stories260K's heads are 8 values: too small for Q8_0 blocks of 32, which is refused with a clear error
        var q8 = assertThrows(io.moe4j.Moe4jException.class, () -> model.newSession(16, KvType.Q8_0));
        assertTrue(q8.getMessage().contains("multiple of 32") && q8.getMessage().contains(" 8"), q8.getMessage());
        for (KvType kv : new KvType[] {KvType.F32, KvType.F16}) {
            JsonNode c = golden.get("cases").get(0);
            int[] expected = ints(c.get("generated_token_ids"));
            int promptLen = c.get("prompt_token_ids").size();
            int newTokens = expected.length - (promptLen - 1);
            StringBuilder streamed = new StringBuilder();
            List<Integer> ids = new ArrayList<>();
            GenerationResult r = model.generate(c.get("prompt").asText(), GenerateOptions.greedy(newTokens).withKvType(kv), t -> {
                streamed.append(t.text());
                if (t.id() >= 0) ids.add(t.id());
            });
            int[] tail = java.util.Arrays.copyOfRange(expected, promptLen - 1, expected.length);
            assertArrayEquals(tail, r.tokenIds(), "KV " + kv);
            assertArrayEquals(tail, ids.stream().mapToInt(Integer::intValue).toArray());
            assertEquals(r.text(), streamed.toString());
            assertEquals(c.get("decoded_text").asText(), c.get("prompt").asText() + r.text());
            assertEquals(StopReason.MAX_TOKENS, r.stopReason());
            assertEquals(newTokens, r.timings().generatedTokens());
        }
    }

    @Test
    void stopStringsEndGenerationAndAreNotReturned() {
        GenerationResult r = model.generate("Once upon a time", GenerateOptions.greedy(100).withStop(List.of("Lily")));
        assertEquals(StopReason.STOP_STRING, r.stopReason());
        assertEquals(", there was a little girl named ", r.text());
        StringBuilder streamed = new StringBuilder();
        model.generate("Once upon a time", GenerateOptions.greedy(100).withStop(List.of("named L", "zzz")), t -> streamed.append(t.text()));
        assertEquals(", there was a little girl ", streamed.toString());
    }

    @Test
    void sameSeedSameTextDifferentSeedDifferentText() {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(40).withSampling(SamplingOptions.DEFAULT.withTemperature(1.5f).withSeed(42));
        String a = model.generate("Once upon a time", o).text();
        assertEquals(a, model.generate("Once upon a time", o).text());
        String b = model.generate("Once upon a time", o.withSampling(o.sampling().withSeed(43))).text();
        assertNotEquals(a, b);
    }

    @Test
    void contextFullIsAStopReasonAndAnOversizedPromptIsAClearError() {
        GenerationResult r = model.generate("Once upon a time", GenerateOptions.greedy(100).withContextSize(12));
        assertEquals(StopReason.CONTEXT_FULL, r.stopReason());
        assertEquals(12 - 5 + 1, r.tokenIds().length, "5 prompt tokens, positions up to 12, the last token is not fed");
        var e = assertThrows(ContextOverflowException.class,
                () -> model.generate("Once upon a time there was a girl", GenerateOptions.greedy(5).withContextSize(4)));
        assertTrue(e.getMessage().contains("context size of 4"), e.getMessage());
    }

    @Test
    void samplerFiltersBehave() {
        float[] logits = {1f, 5f, 3f, 5f, -2f};
        assertEquals(1, new Sampler(SamplingOptions.GREEDY).sample(logits.clone(), new int[0], 0), "ties go to the lower id");
        // top-k 1 is greedy whatever the temperature
        for (int seed = 0; seed < 20; seed++) {
            assertEquals(1, new Sampler(SamplingOptions.DEFAULT.withTopK(1).withSeed(seed).withTemperature(2f)).sample(logits.clone(), new int[0], 0));
        }
        // min-p 0.5 keeps only the two tokens at 5
        for (int seed = 0; seed < 50; seed++) {
            int t = new Sampler(new SamplingOptions(1f, 0, 1f, 0.5f, 1f, 64, 0f, 0f, seed)).sample(logits.clone(), new int[0], 0);
            assertTrue(t == 1 || t == 3, "min-p kept token " + t);
        }
        // a repetition penalty moves greedy away from a repeated token
        int[] history = {1, 1, 1};
        assertEquals(3, new Sampler(SamplingOptions.GREEDY.withPenalties(1.5f, 64, 0f, 0f)).sample(logits.clone(), history, 3));
        assertEquals(3, new Sampler(SamplingOptions.GREEDY.withPenalties(1f, 64, 0f, 0.5f)).sample(logits.clone(), history, 3));
        assertEquals(3, new Sampler(SamplingOptions.GREEDY.withPenalties(1f, 64, 0.5f, 0f)).sample(logits.clone(), history, 3));
        assertThrows(IllegalArgumentException.class, () -> SamplingOptions.DEFAULT.withTopP(0f));
        assertThrows(IllegalArgumentException.class, () -> SamplingOptions.DEFAULT.withTopK(-1));
    }

    @Test
    void sessionsRewindAndContinueLikeAFreshRun() {
        Session s = model.newSession(64, KvType.F32);
        int[] prompt = model.tokenize("Once upon a time");
        float[] first = s.feed(prompt).clone();
        s.feed(new int[]{42, 43});
        s.rewind(prompt.length - 1);
        assertArrayEquals(first, s.feed(prompt[prompt.length - 1]), "rewound and re-fed: same logits");
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }
}
