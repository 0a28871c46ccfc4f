package io.moe4j.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.batch.TokenSampler;
import io.moe4j.generate.SamplingOptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonConstraintTest {
    static boolean prefix(String s) {
        return new JsonConstraint.JsonState().acceptAll(s.getBytes(StandardCharsets.UTF_8));
    }

    static boolean complete(String s) {
        JsonConstraint.JsonState st = new JsonConstraint.JsonState();
        return st.acceptAll(s.getBytes(StandardCharsets.UTF_8)) && st.done();
    }

    @Test
    void recognizesJsonObjects() {
        for (String ok : new String[] {"{}", "{\"a\": 1}", "{\"a\": [1, -2.5e3, true, false, null, \"x\\n\\u00e9\"], \"b\": {\"c\": {}}}",
                "{\n  \"k\": \"v\"\n}", "{\"a\":0.5}"}) {
            assertTrue(complete(ok), ok);
        }
        for (String partial : new String[] {"{", "{\"a", "{\"a\": tr", "{\"a\": [1, ", "{\"a\": -"}) {
            assertTrue(prefix(partial), partial);
            assertFalse(complete(partial), partial);
        }
        for (String bad : new String[] {" {}", "[]", "\"x\"", "{a: 1}", "{\"a\" 1}", "{\"a\": 01}", "{\"a\": tx}", "{}}", "{\"a\": 1,}",
                "{\"a\": \"\u0001\"}", "{\"a\": 1.}", "{\"a\": [1 2]}", "{\"a\": \"\\q\"}"}) {
            assertFalse(complete(bad) || (prefix(bad) && bad.length() > 1 && !bad.endsWith("1.")), bad);
        }
        assertFalse(prefix("{" + " ".repeat(40)), "whitespace runs are bounded");
    }

    static int pieceId(io.moe4j.tokenizer.Tokenizer tok, String piece) {
        for (int i = 0; i < tok.vocabSize(); i++) {
            if (new String(tok.tokenBytes(i, false), StandardCharsets.UTF_8).equals(piece)) return i;
        }
        throw new AssertionError("no token for " + piece);
    }

    @Test
    void sampledTextIsAlwaysAJsonPrefixAndEndsWhenComplete() throws Exception {
        try (Model m = Model.load(TestModels.stories())) {
            var tok = m.tokenizer();
            SplittableRandom rnd = new SplittableRandom(1);
            int completed = 0;
            for (int run = 0; run < 20; run++) {
                TokenSampler s = JsonConstraint.wrap(TokenSampler.of(SamplingOptions.DEFAULT.withTemperature(1f).withSeed(run)), tok);
                StringBuilder text = new StringBuilder();
                int[] history = new int[1];
                for (int step = 0; step < 200; step++) {
                    float[] logits = new float[tok.vocabSize()];
                    for (int i = 0; i < logits.length; i++) logits[i] = (float) rnd.nextGaussian();
                    // Nudge towards closing so that some runs complete.
                    logits[pieceId(tok, "}")] += step / 20f;
                    logits[pieceId(tok, "\"")] += 2;
                    int id = s.sample(logits, history, 0);
                    if (tok.isEndOfGeneration(id)) {
                        new ObjectMapper().readTree(text.toString());
                        completed++;
                        break;
                    }
                    text.append(new String(tok.tokenBytes(id, false), StandardCharsets.UTF_8));
                    assertTrue(prefix(text.toString()), text.toString());
                }
            }
            assertTrue(completed > 0, "some runs complete their object");
        }
    }
}
