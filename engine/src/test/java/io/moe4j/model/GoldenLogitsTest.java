package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.ops.KvBuffer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Acceptance rules 1 and 2 of ../shared/golden/README.md for every case of its manifest: the engine computes in
 * float32 on dequantized weights, so it is held to the float64 reference tightly and to llama.cpp independently.
 */
class GoldenLogitsTest {

    static List<GoldenCase> cases() {
        return GoldenCase.all();
    }

    /** Logits of the stored positions, batched (the whole prompt as one forward call) or one token at a time. */
    static float[] run(GoldenCase c, KvBuffer.Type kvType, boolean incremental) {
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            int[] tokens = c.promptTokens();
            int vocab = tf.vocabSize();
            KvCache cache = new KvCache(tf.config(), tokens.length, kvType);
            float[] all = new float[tokens.length * vocab];
            if (incremental) {
                for (int t = 0; t < tokens.length; t++) {
                    float[] l = tf.forward(new int[]{tokens[t]}, 1, cache, false, null);
                    System.arraycopy(l, 0, all, t * vocab, vocab);
                }
            } else {
                all = tf.forward(tokens, tokens.length, cache, true, null);
            }
            return c.storedRows(all);
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertTrue(a.length == b.length, "length " + a.length + " vs " + b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void batchedF32KvMatchesReferenceAndLlamaCpp(GoldenCase c) {
        check(c, run(c, KvBuffer.Type.F32, false), "batched, F32 KV");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void incrementalF32KvMatchesReferenceAndLlamaCpp(GoldenCase c) {
        check(c, run(c, KvBuffer.Type.F32, true), "one token at a time, F32 KV");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void f16KvStaysWithinTheF16Tolerance(GoldenCase c) {
        double L = c.logitScale();
        float[] ours = run(c, KvBuffer.Type.F16, false);
        double dRef = maxAbsDiff(ours, c.floats("reference_exact_file"));
        assertTrue(dRef <= 1e-2 * L, c.id() + " F16 KV: max |engine - float64 reference| = " + dRef + " > " + 1e-2 * L);
    }

    private static void check(GoldenCase c, float[] ours, String how) {
        double L = c.logitScale();
        double dRef = maxAbsDiff(ours, c.floats("reference_exact_file"));
        double dLlama = maxAbsDiff(ours, c.floats("logits_file_kv_f32"));
        double refVsLlama = c.number("reference_exact_vs_llamacpp_kvf32_max_abs");
        System.out.printf("%-26s %-28s |Δ ref| %.3g  |Δ llama.cpp| %.3g (ref vs llama.cpp %.3g, L %.2f)%n",
                c.id(), how, dRef, dLlama, refVsLlama, L);
        assertTrue(dRef <= 1e-3 * L, c.id() + " " + how + ": rule 1, max |engine - float64 reference| = " + dRef + " > " + 1e-3 * L);
        double bound = c.rule2Bound();
        assertTrue(dLlama <= bound, c.id() + " " + how + ": rule 2, max |engine - llama.cpp| = " + dLlama + " > " + bound);
    }
}
