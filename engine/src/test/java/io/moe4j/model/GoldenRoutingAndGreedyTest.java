package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Acceptance rules 3 (routing equals llama.cpp's) and 4 (greedy continuations) of ../shared/golden/README.md. */
class GoldenRoutingAndGreedyTest {

    static List<GoldenCase> moeCases() {
        return GoldenCase.all().stream().filter(c -> c.json().hasNonNull("router_logits_file")).toList();
    }

    static List<GoldenCase> cases() {
        return GoldenCase.all();
    }

    static List<GoldenCase> topKCases() {
        return moeCases().stream().filter(c -> !c.json().hasNonNull("router_selected_file")).toList();
    }

    static List<GoldenCase> selectionFileCases() {
        return moeCases().stream().filter(c -> c.json().hasNonNull("router_selected_file")).toList();
    }

    /**
     * Rule 3 for the deepseek2 cases, whose selection (sigmoid gate, selection bias, expert groups) is not the top k
     * of the logits: at every token of every layer in {@code router_layers} (the MoE blocks; the dense leading
     * blocks route nothing) the selected experts, as a set, are those llama.cpp selected.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("selectionFileCases")
    void selectedExpertsAreTheOnesLlamaCppSelected(GoldenCase c) {
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            ModelConfig cfg = tf.config();
            int[] tokens = c.promptTokens();
            int[] layers = GoldenCase.ints(c.json().get("router_layers"));
            int k = cfg.expertUsedCount();
            int[] llama = c.ints("router_selected_file");
            assertEquals((long) layers.length * tokens.length * k, llama.length, "selection file size");
            int[] checked = {0};
            KvCache cache = new KvCache(cfg, tokens.length, KvType.F32);
            tf.forward(tokens, tokens.length, cache, false, (layer, token, logits, off, selected, weights) -> {
                int li = Arrays.binarySearch(layers, layer);
                assertTrue(li >= 0, c.id() + ": layer " + layer + " routed, but llama.cpp routes only " + Arrays.toString(layers));
                int[] expected = Arrays.copyOfRange(llama, (li * tokens.length + token) * k, (li * tokens.length + token + 1) * k);
                Arrays.sort(expected);
                assertArrayEquals(expected, selected, c.id() + " layer " + layer + " token " + token + ": experts "
                        + Arrays.toString(selected) + ", llama.cpp chose " + Arrays.toString(expected));
                checked[0]++;
            });
            assertEquals(layers.length * tokens.length, checked[0], "every token of every MoE layer was routed");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("topKCases")
    void selectedExpertsAreTheTopKOfLlamaCppsRouterLogits(GoldenCase c) {
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            ModelConfig cfg = tf.config();
            int[] tokens = c.promptTokens();
            int nExp = cfg.expertCount(), k = cfg.expertUsedCount();
            float[] llama = c.floats("router_logits_file");
            assertEquals((long) cfg.blockCount() * tokens.length * nExp, llama.length, "router file size");
            int[] checked = {0};
            KvCache cache = new KvCache(cfg, tokens.length, KvType.F32);
            tf.forward(tokens, tokens.length, cache, false, (layer, token, logits, off, selected, weights) -> {
                int base = (layer * tokens.length + token) * nExp;
                int[] expected = topK(llama, base, nExp, k);
                assertArrayEquals(expected, selected, c.id() + " layer " + layer + " token " + token + ": experts "
                        + Arrays.toString(selected) + ", llama.cpp chose " + Arrays.toString(expected));
                checked[0]++;
            });
            assertEquals(cfg.blockCount() * tokens.length, checked[0], "every token and layer was routed");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void greedyContinuationMatchesLlamaCpp(GoldenCase c) {
        var greedy = c.json().get("greedy");
        int[] expected = GoldenCase.ints(greedy.get("ids_kv_f32"));
        int reliable = c.id().equals("stories260K") ? expected.length : greedy.get("reliable_prefix_len").get("0.1").asInt();
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            int[] prompt = c.promptTokens();
            KvCache cache = new KvCache(tf.config(), prompt.length + expected.length, KvType.F32);
            float[] logits = tf.forward(prompt, prompt.length, cache, false, null);
            int[] ours = new int[reliable];
            for (int i = 0; i < reliable; i++) {
                ours[i] = argmax(logits);
                logits = tf.forward(new int[]{ours[i]}, 1, cache, false, null);
            }
            assertArrayEquals(Arrays.copyOf(expected, reliable), ours, c.id() + ": first " + reliable + " greedy ids");
            assertTrue(reliable <= expected.length);
        }
    }

    static int argmax(float[] l) {
        int best = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
        return best;
    }

    static int[] topK(float[] v, int off, int n, int k) {
        boolean[] taken = new boolean[n];
        for (int s = 0; s < k; s++) {
            int best = -1;
            for (int e = 0; e < n; e++) if (!taken[e] && (best < 0 || v[off + e] > v[off + best])) best = e;
            taken[best] = true;
        }
        int[] r = new int[k];
        for (int e = 0, j = 0; e < n; e++) if (taken[e]) r[j++] = e;
        return r;
    }
}
