package io.moe4j.eval;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.kernels.KvType;
import io.moe4j.model.GoldenCase;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EvaluatorTest {

    /**
     * The golden acceptance rule for eval: on each case, the cross-entropy of the case's tokens computed from the
     * float64 reference logits equals eval's within 1e-4 nats per token (over the positions the case stores).
     */
    @Test
    void crossEntropyAgreesWithTheFloat64ReferenceOnEveryGoldenCase() {
        for (GoldenCase c : GoldenCase.all()) {
            int[] tokens = c.promptTokens();
            int[] positions = c.positions();
            float[] ref = c.floats("reference_exact_file");
            int vocab = c.vocab();
            try (Model m = Model.load(c.modelPath())) {
                Evaluator.Result r = Evaluator.evaluate(m.transformer(), null, m.tokenizer(), tokens, 0,
                        new Evaluator.Options(tokens.length, tokens.length - 1, 64, false), Evaluator.Progress.NONE);
                double refSum = 0, ourSum = 0;
                int n = 0;
                for (int i = 0; i < positions.length; i++) {
                    int target = positions[i] + 1;
                    if (target >= tokens.length) continue; // the last row predicts past the prompt
                    refSum += nll(ref, i * vocab, vocab, tokens[target]);
                    ourSum += r.nll()[target];
                    n++;
                }
                assertTrue(n > 10, c.id());
                double diff = Math.abs(refSum / n - ourSum / n);
                assertTrue(diff <= 1e-4, c.id() + ": reference " + refSum / n + ", eval " + ourSum / n + " nats per token");
                if (positions.length == tokens.length) { // every position stored: the whole-text figure is the same
                    assertEquals(refSum / n, r.figures().crossEntropy(), 1e-4, c.id());
                    assertEquals(tokens.length - 1, r.figures().tokens(), c.id());
                }
            }
        }
    }

    /** Independent of the float64 reference: the perplexity llama.cpp's own logits give on the stories260K case. */
    @Test
    void perplexityAgreesWithLlamaCppsLogitsOnStories260K() {
        GoldenCase c = GoldenCase.byId("stories260K");
        int[] tokens = c.promptTokens();
        float[] llama = c.floats("logits_file_kv_f32");
        double sum = 0;
        for (int p = 0; p + 1 < tokens.length; p++) sum += nll(llama, p * c.vocab(), c.vocab(), tokens[p + 1]);
        double llamaPpl = Math.exp(sum / (tokens.length - 1));
        try (Model m = Model.load(c.modelPath())) {
            Evaluator.Result r = Evaluator.evaluate(m.transformer(), null, m.tokenizer(), tokens, 0,
                    new Evaluator.Options(tokens.length, tokens.length - 1, 16, false), Evaluator.Progress.NONE);
            double ours = r.figures().perplexity();
            assertTrue(Math.abs(ours / llamaPpl - 1) < 1e-3, "llama.cpp " + llamaPpl + ", eval " + ours);
        }
    }

    static double nll(float[] logits, int off, int vocab, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp(logits[off + i] - max);
        return max + Math.log(sum) - logits[off + target];
    }

    static String stories() throws IOException {
        try (InputStream in = EvaluatorTest.class.getResourceAsStream("/io/moe4j/compress/tinystories-like.txt")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void slidingWindowsScoreEveryTokenOnceWithItsWindowsContext() throws IOException {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            int[] tokens = Arrays.copyOf(Evaluator.tokenize(m.tokenizer(), stories(), false), 300);
            Evaluator.Result r = Evaluator.evaluate(m.transformer(), null, m.tokenizer(), tokens, 0,
                    new Evaluator.Options(100, 30, 16, false), Evaluator.Progress.NONE);
            assertTrue(Double.isNaN(r.nll()[0]));
            for (int p = 1; p < tokens.length; p++) assertFalse(Double.isNaN(r.nll()[p]), "position " + p);
            assertEquals(tokens.length - 1, r.figures().tokens());
            double sum = 0;
            for (int p = 1; p < tokens.length; p++) sum += r.nll()[p];
            assertEquals(sum, r.figures().nll(), 1e-9);
            // token 250 is scored in the window that starts at 180 (the first whose end passes 250): check it by hand
            assertEquals(manualNll(m.transformer(), Arrays.copyOfRange(tokens, 180, 251)), r.nll()[250], 1e-12);
        }
    }

    @Test
    void llamaCompatibleWindowsStartWithBosAndScoreTheirSecondHalf() throws IOException {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            int ctx = 128;
            String text = stories();
            int[] tokens = Evaluator.tokenize(m.tokenizer(), text, true);
            assertEquals(m.tokenizer().bos(), tokens[0]);
            Evaluator.Result r = Evaluator.evaluate(m.transformer(), null, m.tokenizer(), tokens, 0,
                    new Evaluator.Options(ctx, 0, 50, true), Evaluator.Progress.NONE);
            int windows = tokens.length / ctx;
            assertEquals((long) windows * (ctx - 1 - ctx / 2), r.figures().tokens());
            // window 2: tokens [256, 384) with its first token replaced by BOS; position 256 + 100 scored
            int[] w = Arrays.copyOfRange(tokens, 2 * ctx, 2 * ctx + 101);
            w[0] = m.tokenizer().bos();
            assertEquals(manualNll(m.transformer(), w), r.nll()[2 * ctx + 100], 1e-12);
            assertTrue(Double.isNaN(r.nll()[2 * ctx + ctx / 2]), "the first half (and the first scored row's input) is not scored");
            assertFalse(Double.isNaN(r.nll()[2 * ctx + ctx / 2 + 1]));
            assertThrows(IllegalArgumentException.class, () -> Evaluator.evaluate(m.transformer(), null, m.tokenizer(),
                    tokens, 0, new Evaluator.Options(tokens.length, 0, 50, true), Evaluator.Progress.NONE));
        }
    }

    /** -log p(last token | the others), from one forward pass of the whole sequence. */
    static double manualNll(Transformer tf, int[] seq) {
        KvCache cache = new KvCache(tf.config(), seq.length, KvType.F32);
        float[] last = tf.forward(seq, seq.length - 1, cache, false, null);
        return nll(last, 0, tf.vocabSize(), seq[seq.length - 1]);
    }

    @Test
    void comparingAModelWithItselfGivesZeroDivergenceAndAQuantizedFileSome() {
        GoldenCase f32 = GoldenCase.byId("llama_moe-f32"), q4 = GoldenCase.byId("llama_moe-q4_0");
        int[] tokens = f32.promptTokens();
        Evaluator.Options o = new Evaluator.Options(32, 16, 8, false);
        try (Model a = Model.load(f32.modelPath()); Model b = Model.load(q4.modelPath())) {
            Evaluator.Result same = Evaluator.evaluate(a.transformer(), a.transformer(), a.tokenizer(), tokens, 0, o,
                    Evaluator.Progress.NONE);
            assertEquals(0, same.divergence().meanKld(), 1e-12);
            assertEquals(1.0, same.divergence().top1Agreement());
            assertEquals(same.figures().nll(), same.compared().nll(), 0);
            Evaluator.Result q = Evaluator.evaluate(a.transformer(), b.transformer(), a.tokenizer(), tokens, 0, o,
                    Evaluator.Progress.NONE);
            Evaluator.Divergence d = q.divergence();
            assertTrue(d.meanKld() > 1e-6 && d.meanKld() < 0.5, "Q4_0 vs F32: mean KLD " + d.meanKld());
            assertTrue(d.kld99() >= d.meanKld() * 0.5 && d.maxKld() >= d.kld99(), d.toString());
            assertTrue(d.top1Agreement() > 0.5 && d.top1Agreement() <= 1.0, d.toString());
            assertEquals(same.figures().nll(), q.figures().nll(), 0, "the first model's figures do not depend on the second");
        }
    }
}
