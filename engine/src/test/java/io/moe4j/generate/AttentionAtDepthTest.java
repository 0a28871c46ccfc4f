package io.moe4j.generate;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Self-consistency at depth: a long prompt evaluated by chunked prefill ({@link Session#feed(int[])}, chunks of
 * {@link Session#PREFILL_BATCH}) and, in a second session, one token at a time gives bit-identical logits at sampled
 * positions, with every KV cache type. The two ways share nothing but the arithmetic of each token: prefill
 * attends groups of up to 8 tokens per KV head and walks each token's range span by span itself, while a decode
 * token's range is split into spans spread over the worker threads and merged afterwards; the rest of the layer is
 * batch-invariant. F16 and Q8_0 caches agree bit for bit too (measured difference 0, so that is what is asserted):
 * prefill writes a chunk's keys and values into the cache before attending, so both ways read the same rounded
 * entries.
 *
 * <p>The model is synthesized: llama layout, 1 layer, 64 wide, 2 query heads of 32 with 2 KV heads, an attention
 * sink per head, a dense FFN of 64 and 64 tokens, random F32 weights; its cost is almost all attention. The suite
 * runs 8,192 positions (16 spans of the kernel); {@code -Dmoe4j.depth32k=true} runs 32,768.
 */
class AttentionAtDepthTest {
    private static final int EMBD = 64, HEADS = 2, KV_HEADS = 2, FFN = 64, VOCAB = 64, CONTEXT = 32768;

    @ParameterizedTest
    @EnumSource(KvType.class)
    void chunkedPrefillAndOneTokenAtATimeAgreeAt8kPositions(KvType type, @TempDir Path dir) {
        compare(type, 8192, dir);
    }

    @Test
    void chunkedPrefillAndOneTokenAtATimeAgreeAt32kPositions(@TempDir Path dir) {
        assumeTrue(Boolean.getBoolean("moe4j.depth32k"),
                "the 32,768-position variant runs with -Dmoe4j.depth32k=true (about 3.5 minutes for the three cache types on 2 shared cores); the suite runs 8,192");
        for (KvType type : KvType.values()) compare(type, 32768, dir);
    }

    private static void compare(KvType type, int length, Path dir) {
        Path file = synthesize(dir.resolve("depth.gguf"));
        SplittableRandom rng = new SplittableRandom(5);
        int[] prompt = new int[length];
        for (int i = 0; i < length; i++) prompt[i] = rng.nextInt(VOCAB);
        // Sampled positions: spread over the prompt, on and off chunk and span boundaries, the last one included.
        int[] at = {0, 511, 512, 1000, length / 4 + 17, length / 2 - 1, length / 2 + 300, 3 * length / 4 + 511, length - 513, length - 1};
        try (GgufFile f = GgufFile.open(file)) {
            Transformer tf = Transformer.of(f);
            float[][] chunked = new float[at.length][], single = new float[at.length][];
            long t0 = System.nanoTime();
            try (Session s = new Session(tf, new KvCache(tf.config(), length, type))) {
                int from = 0;
                for (int i = 0; i < at.length; i++) {
                    chunked[i] = s.feed(java.util.Arrays.copyOfRange(prompt, from, at[i] + 1));
                    from = at[i] + 1;
                }
            }
            long t1 = System.nanoTime();
            try (Session s = new Session(tf, new KvCache(tf.config(), length, type))) {
                for (int p = 0, i = 0; p < length; p++) {
                    float[] logits = s.feed(prompt[p]);
                    if (p == at[i]) single[i++] = logits;
                }
            }
            long t2 = System.nanoTime();
            System.out.printf("%s, %d positions: chunked prefill %.1f s, one token at a time %.1f s%n", type, length,
                    (t1 - t0) / 1e9, (t2 - t1) / 1e9);
            for (int i = 0; i < at.length; i++) {
                float maxDiff = 0;
                for (int j = 0; j < VOCAB; j++) maxDiff = Math.max(maxDiff, Math.abs(chunked[i][j] - single[i][j]));
                System.out.printf("%s position %d: max |difference| %g%n", type, at[i], maxDiff);
            }
            for (int i = 0; i < at.length; i++) {
                for (int j = 0; j < VOCAB; j++) {
                    assertEquals(Float.floatToIntBits(single[i][j]), Float.floatToIntBits(chunked[i][j]),
                            type + ", position " + at[i] + " of " + length + ", logit " + j + ": one token at a time "
                                    + single[i][j] + ", chunked prefill " + chunked[i][j]);
                }
            }
        }
    }

    /** The model of the class comment, written to {@code file}. */
    static Path synthesize(Path file) {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("general.architecture", GgufValue.of("llama"));
        md.put("general.name", GgufValue.of("moe4j attention-at-depth test model"));
        md.put("llama.context_length", GgufValue.ofU32(CONTEXT));
        md.put("llama.embedding_length", GgufValue.ofU32(EMBD));
        md.put("llama.block_count", GgufValue.ofU32(1));
        md.put("llama.feed_forward_length", GgufValue.ofU32(FFN));
        md.put("llama.attention.head_count", GgufValue.ofU32(HEADS));
        md.put("llama.attention.head_count_kv", GgufValue.ofU32(KV_HEADS));
        md.put("llama.rope.freq_base", GgufValue.ofF32(10000f));
        md.put("llama.attention.layer_norm_rms_epsilon", GgufValue.ofF32(1e-5f));
        SplittableRandom rng = new SplittableRandom(11);
        int kv = EMBD / HEADS * KV_HEADS;
        double sd = 1 / Math.sqrt(EMBD);
        try (GgufWriter w = GgufWriter.create(file, md)) {
            w.addTensor("token_embd.weight", GgmlType.F32, EMBD, VOCAB);
            w.addTensor("output_norm.weight", GgmlType.F32, EMBD);
            w.addTensor("output.weight", GgmlType.F32, EMBD, VOCAB);
            w.addTensor("blk.0.attn_norm.weight", GgmlType.F32, EMBD);
            w.addTensor("blk.0.attn_q.weight", GgmlType.F32, EMBD, EMBD);
            w.addTensor("blk.0.attn_k.weight", GgmlType.F32, EMBD, kv);
            w.addTensor("blk.0.attn_v.weight", GgmlType.F32, EMBD, kv);
            w.addTensor("blk.0.attn_output.weight", GgmlType.F32, EMBD, EMBD);
            w.addTensor("blk.0.attn_sinks.weight", GgmlType.F32, HEADS);
            w.addTensor("blk.0.ffn_norm.weight", GgmlType.F32, EMBD);
            w.addTensor("blk.0.ffn_gate.weight", GgmlType.F32, EMBD, FFN);
            w.addTensor("blk.0.ffn_up.weight", GgmlType.F32, EMBD, FFN);
            w.addTensor("blk.0.ffn_down.weight", GgmlType.F32, FFN, EMBD);
            w.writeData("token_embd.weight", gaussian(rng, EMBD * VOCAB, 1));
            w.writeData("output_norm.weight", ones(EMBD));
            w.writeData("output.weight", gaussian(rng, EMBD * VOCAB, sd));
            w.writeData("blk.0.attn_norm.weight", ones(EMBD));
            // Queries and keys several times the usual scale: sharp attention, so that a few positions at any depth
            // carry weight and a wrong position or merge shows in the logits.
            w.writeData("blk.0.attn_q.weight", gaussian(rng, EMBD * EMBD, 3 * sd));
            w.writeData("blk.0.attn_k.weight", gaussian(rng, EMBD * kv, 3 * sd));
            w.writeData("blk.0.attn_v.weight", gaussian(rng, EMBD * kv, sd));
            w.writeData("blk.0.attn_output.weight", gaussian(rng, EMBD * EMBD, sd));
            w.writeData("blk.0.attn_sinks.weight", gaussian(rng, HEADS, 1));
            w.writeData("blk.0.ffn_norm.weight", ones(EMBD));
            w.writeData("blk.0.ffn_gate.weight", gaussian(rng, EMBD * FFN, sd));
            w.writeData("blk.0.ffn_up.weight", gaussian(rng, EMBD * FFN, sd));
            w.writeData("blk.0.ffn_down.weight", gaussian(rng, FFN * EMBD, 1 / Math.sqrt(FFN)));
            return w.finish();
        }
    }

    private static float[] gaussian(SplittableRandom rng, int n, double sd) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rng.nextGaussian() * sd);
        return a;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }
}
