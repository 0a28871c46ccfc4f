package io.moe4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The long-context golden cases (../shared/golden/manifest-long.json: 16,384 tokens with YaRN, logits stored at 33
 * positions) under the acceptance rules of the golden README, the prompt evaluated the way the engine evaluates
 * long prompts, in chunks of {@link #CHUNK} tokens through the KV cache, and one token at a time.
 *
 * <ul>
 *   <li>Rules 1 and 2 with F32 KV: within 1e-3·L of the float64 reference and within 2·(reference vs llama.cpp)
 *       + 1e-3·L of llama.cpp's F32-KV logits.</li>
 *   <li>F16 KV: within 1e-2·L of the reference (rule 1's F16 bound) and rule 2's bound against llama.cpp.</li>
 *   <li>Q8_0 KV: the bounds the Q8_0 cache is held to on the short cases (5e-2·L of the reference,
 *       2·(reference vs llama.cpp) + 5e-2·L of llama.cpp).</li>
 *   <li>Rule 3: at every one of the 32,768 token-layers, the experts selected equal the top-k of llama.cpp's router
 *       logits, except at the token-layers the manifest lists as near ties or as selected differently by some
 *       flavour (its README entry); at the stored positions without exception. Q8_0 KV: see
 *       {@link #checkRouting}.</li>
 * </ul>
 */
class GoldenLongContextTest {
    /** Prompt tokens per forward call of the chunked evaluation (the engine's default prefill batch). */
    static final int CHUNK = 512;

    static Stream<Arguments> runs() {
        List<Arguments> a = new ArrayList<>();
        for (GoldenCase c : GoldenCase.longContext()) {
            for (KvType t : List.of(KvType.F32, KvType.F16, KvType.Q8_0)) {
                a.add(Arguments.of(c, t, false));
                a.add(Arguments.of(c, t, true));
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} KV, one token at a time: {2}")
    @MethodSource("runs")
    void logitsAndRoutingFollowTheGoldenRules(GoldenCase c, KvType kv, boolean incremental) {
        List<int[]> selections = new ArrayList<>();
        long t0 = System.nanoTime();
        float[] ours = run(c, kv, incremental, selections);
        double seconds = (System.nanoTime() - t0) / 1e9;
        double L = c.logitScale();
        double refVsLlama = c.number("reference_exact_vs_llamacpp_kvf32_max_abs");
        double dRef = GoldenLogitsTest.maxAbsDiff(ours, c.floats("reference_exact_file"));
        double dLlama = GoldenLogitsTest.maxAbsDiff(ours, c.floats("logits_file_kv_f32"));
        String how = (incremental ? "one token at a time" : "chunks of " + CHUNK) + ", " + kv + " KV";
        System.out.printf("%-20s %-32s |Δ ref| %.3g  |Δ llama.cpp| %.3g (ref vs llama.cpp %.3g, L %.2f), %.1f s%n",
                c.id(), how, dRef, dLlama, refVsLlama, L, seconds);
        double tolerance = switch (kv) {
            case F32 -> 1e-3;
            case F16 -> 1e-2;
            case Q8_0 -> 5e-2;
        };
        double llamaTolerance = kv == KvType.Q8_0 ? 5e-2 : 1e-3;
        assertTrue(dRef <= tolerance * L, c.id() + " " + how + ": max |engine - float64 reference| = " + dRef + " > " + tolerance * L);
        double bound = 2 * refVsLlama + llamaTolerance * L;
        assertTrue(dLlama <= bound, c.id() + " " + how + ": max |engine - llama.cpp F32 KV| = " + dLlama + " > " + bound);
        checkRouting(c, selections, how, kv == KvType.Q8_0);
    }

    /**
     * Logits at the stored positions; {@code selections} gets, per layer, the experts chosen for every prompt token
     * ({@code [token * k + j]}).
     */
    static float[] run(GoldenCase c, KvType kvType, boolean incremental, List<int[]> selections) {
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            int[] tokens = c.promptTokens();
            int vocab = tf.vocabSize(), k = tf.config().expertUsedCount();
            for (int l = 0; l < tf.config().blockCount(); l++) selections.add(new int[tokens.length * k]);
            int[] at = {0};
            RoutingObserver observer = (layer, token, logits, offset, selected, weights) ->
                    System.arraycopy(selected, 0, selections.get(layer), (at[0] + token) * k, k);
            int[] positions = c.positions();
            float[] stored = new float[positions.length * vocab];
            try (KvCache cache = new KvCache(tf.config(), tokens.length, kvType)) {
                int step = incremental ? 1 : CHUNK;
                for (int from = 0; from < tokens.length; from += step) {
                    int n = Math.min(step, tokens.length - from);
                    at[0] = from;
                    float[] logits = tf.forward(Arrays.copyOfRange(tokens, from, from + n), n, cache, !incremental, observer);
                    for (int i = 0; i < positions.length; i++) {
                        int p = positions[i] - from;
                        if (p >= 0 && p < n) System.arraycopy(logits, (incremental ? 0 : p) * vocab, stored, i * vocab, vocab);
                    }
                }
            }
            return stored;
        }
    }

    /**
     * Rule 3. With a Q8_0 cache the router logits move by up to ~5e-2 (its rounding step is about 20 times F16's),
     * more than the margins of this case away from its stored positions, so there the rule is held at the stored
     * positions (as the case's README entry gives it) and elsewhere a token-layer may route otherwise only where
     * llama.cpp's router margin is below 1e-2 relative, Q8_0's own perturbation, or above a layer where the same
     * token was routed otherwise (its hidden state is then another one); the count is printed.
     */
    private static void checkRouting(GoldenCase c, List<int[]> selections, String how, boolean q8) {
        Set<Long> excused = new HashSet<>();
        JsonNode margin = c.json().get("router_margin");
        for (String list : List.of("near_ties", "selection_differs")) {
            for (JsonNode e : margin.get(list)) excused.add(key(e.get("layer").asInt(), e.get("token").asInt()));
        }
        Set<Integer> storedPositions = new HashSet<>();
        for (int p : c.positions()) storedPositions.add(p);
        float[] router = c.floats("router_logits_file");
        int nTokens = c.promptTokens().length, nExpert = c.json().get("config").get("n_expert").asInt();
        int k = selections.get(0).length / nTokens;
        assertEquals((long) selections.size() * nTokens * nExpert, router.length, "router logits file size");
        int checked = 0, rerouted = 0;
        Set<Integer> reroutedToken = new HashSet<>(); // a token routed otherwise at a layer has another state above it
        List<String> wrong = new ArrayList<>();
        for (int l = 0; l < selections.size(); l++) {
            for (int t = 0; t < nTokens; t++) {
                boolean isExcused = excused.contains(key(l, t));
                if (isExcused && !storedPositions.contains(t)) continue;
                int[] expected = GoldenRoutingAndGreedyTest.topK(router, (l * nTokens + t) * nExpert, nExpert, k);
                int[] got = Arrays.copyOfRange(selections.get(l), t * k, t * k + k);
                Arrays.sort(got);
                checked++;
                if (Arrays.equals(expected, got)) continue;
                if (q8 && !storedPositions.contains(t)
                        && (reroutedToken.contains(t) || GoldenLogitsTest.relativeMargin(router, (l * nTokens + t) * nExpert, nExpert, k) < 1e-2)) {
                    rerouted++;
                    reroutedToken.add(t);
                    continue;
                }
                wrong.add("layer " + l + " token " + t + ": " + Arrays.toString(got) + " instead of " + Arrays.toString(expected));
            }
        }
        System.out.printf("%-20s %-32s routing: %d token-layers checked, %d excused, %d differ%s%n", c.id(), how, checked,
                excused.size(), wrong.size(), q8 ? ", " + rerouted + " rerouted by Q8_0 where the margin is below 1e-2" : "");
        assertTrue(wrong.isEmpty(), c.id() + " " + how + ": rule 3 fails at " + wrong.size() + " token-layers, e.g. "
                + wrong.subList(0, Math.min(5, wrong.size())));
    }

    private static long key(int layer, int token) {
        return ((long) layer << 32) | token;
    }
}
