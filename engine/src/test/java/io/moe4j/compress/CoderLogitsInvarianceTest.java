package io.moe4j.compress;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import io.moe4j.model.GoldenCase;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What makes model-based compression decodable: the compressor evaluates chunks in batches of many tokens beside
 * other chunks, the decompressor one token per chunk per pass, also beside other chunks; every logit (and so every
 * frequency of the coder) must be the same bit for bit. Checked on every golden model file.
 */
class CoderLogitsInvarianceTest {

    @Test
    void batchedAndTokenByTokenLogitsAreBitIdenticalOnEveryGoldenModel() {
        Map<String, Path> models = new LinkedHashMap<>();
        int[] prompt = null;
        for (GoldenCase c : GoldenCase.all()) {
            models.put(c.id(), c.modelPath());
            if (prompt == null) prompt = c.promptTokens();
        }
        // three chunks of different lengths, as one group of the coder
        int[][] chunks = {Arrays.copyOf(prompt, 40), Arrays.copyOfRange(prompt, 9, 52), Arrays.copyOf(prompt, 17)};
        for (Map.Entry<String, Path> e : models.entrySet()) {
            try (GgufFile f = GgufFile.open(e.getValue())) {
                Transformer tf = Transformer.of(f);
                float[][][] batched = batched(tf, chunks, 6);
                float[][][] stepwise = tokenByToken(tf, chunks);
                for (int s = 0; s < chunks.length; s++) {
                    assertEquals(chunks[s].length, batched[s].length);
                    for (int t = 0; t < chunks[s].length; t++) {
                        assertArrayEquals(batched[s][t], stepwise[s][t], e.getKey() + ": chunk " + s + ", position " + t);
                    }
                }
            }
        }
    }

    /** The compressor's pattern: up to {@code step} tokens of every chunk per forward pass, all rows returned. */
    static float[][][] batched(Transformer tf, int[][] chunks, int step) {
        int vocab = tf.vocabSize();
        float[][][] rows = new float[chunks.length][][];
        KvCache[] caches = new KvCache[chunks.length];
        int[] fed = new int[chunks.length];
        for (int s = 0; s < chunks.length; s++) {
            rows[s] = new float[chunks[s].length][];
            caches[s] = new KvCache(tf.config(), chunks[s].length, KvType.F32);
        }
        while (true) {
            List<Transformer.SequenceInput> in = new ArrayList<>();
            List<Integer> who = new ArrayList<>();
            for (int s = 0; s < chunks.length; s++) {
                if (fed[s] == chunks[s].length) continue;
                int n = Math.min(step, chunks[s].length - fed[s]);
                in.add(new Transformer.SequenceInput(caches[s], Arrays.copyOfRange(chunks[s], fed[s], fed[s] + n), true));
                who.add(s);
            }
            if (in.isEmpty()) return rows;
            float[][] out = tf.forward(in, null);
            for (int i = 0; i < in.size(); i++) {
                int s = who.get(i);
                for (int r = 0; r < in.get(i).tokens().length; r++) {
                    rows[s][fed[s]++] = Arrays.copyOfRange(out[i], r * vocab, (r + 1) * vocab);
                }
            }
        }
    }

    /** The decompressor's pattern: one token of every unfinished chunk per forward pass, last row only. */
    static float[][][] tokenByToken(Transformer tf, int[][] chunks) {
        float[][][] rows = new float[chunks.length][][];
        KvCache[] caches = new KvCache[chunks.length];
        int longest = 0;
        for (int s = 0; s < chunks.length; s++) {
            rows[s] = new float[chunks[s].length][];
            caches[s] = new KvCache(tf.config(), chunks[s].length, KvType.F32);
            longest = Math.max(longest, chunks[s].length);
        }
        for (int t = 0; t < longest; t++) {
            List<Transformer.SequenceInput> in = new ArrayList<>();
            List<Integer> who = new ArrayList<>();
            for (int s = 0; s < chunks.length; s++) {
                if (t >= chunks[s].length) continue;
                in.add(new Transformer.SequenceInput(caches[s], new int[]{chunks[s][t]}, false));
                who.add(s);
            }
            float[][] out = tf.forward(in, null);
            for (int i = 0; i < in.size(); i++) rows[who.get(i)][t] = out[i];
        }
        return rows;
    }
}
