package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A token's logits are bit-identical whether it is computed alone, inside a longer batch, or beside other sequences. */
class BatchInvarianceTest {

    @Test
    void logitsDoNotDependOnWhatElseIsInTheBatch() {
        for (String id : new String[]{"qwen2moe-q8_0", "gpt_oss-mxfp4_moe", "llama_moe-q4_k_m", "deepseek2-q8_0"}) {
            GoldenCase c = GoldenCase.byId(id);
            try (GgufFile f = GgufFile.open(c.modelPath())) {
                Transformer tf = Transformer.of(f);
                int[] prompt = c.promptTokens();
                int[] a = Arrays.copyOf(prompt, 20), b = Arrays.copyOfRange(prompt, 20, 52);

                // A alone, token by token
                KvCache alone = new KvCache(tf.config(), 64, KvType.F32);
                float[] aloneLast = null;
                for (int tok : a) aloneLast = tf.forward(new int[]{tok}, 1, alone, false, null);

                // A as one batch beside B (another sequence) in the same forward call
                KvCache ca = new KvCache(tf.config(), 64, KvType.F32), cb = new KvCache(tf.config(), 64, KvType.F32);
                float[][] both = tf.forward(List.of(new Transformer.SequenceInput(ca, a, false),
                        new Transformer.SequenceInput(cb, b, true)), null);
                assertArrayEquals(aloneLast, both[0], id + ": batched beside another sequence vs alone");

                // B's rows equal B run alone as a batch
                KvCache cb2 = new KvCache(tf.config(), 64, KvType.F32);
                assertArrayEquals(tf.forward(b, b.length, cb2, true, null), both[1], id + ": second sequence");

                // decode step of both together equals each decode step alone
                float[][] step = tf.forward(List.of(new Transformer.SequenceInput(ca, new int[]{7}, false),
                        new Transformer.SequenceInput(cb, new int[]{9}, false)), null);
                assertArrayEquals(tf.forward(new int[]{7}, 1, alone, false, null), step[0], id + ": joint decode step");
            }
        }
    }

    @Test
    void aSequenceCannotAppearTwiceInABatch() {
        GoldenCase c = GoldenCase.byId("llama_moe-f32");
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            Transformer tf = Transformer.of(f);
            KvCache cache = new KvCache(tf.config(), 8, KvType.F32);
            assertThrows(IllegalArgumentException.class, () -> tf.forward(List.of(
                    new Transformer.SequenceInput(cache, new int[]{1}, false),
                    new Transformer.SequenceInput(cache, new int[]{2}, false)), null));
            assertThrows(ContextOverflowException.class, () -> tf.forward(new int[9], 9, cache, false, null));
        }
    }
}
