package io.moe4j.model;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.generate.Session;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The deepseek2 architecture as the golden DeepSeek-V3-style file describes it (the logits themselves are the golden
 * tests' business): hyper-parameters from its metadata, dense and MoE blocks, the latent KV cache's one row per
 * position, and the files moe4j refuses.
 */
class DeepSeek2Test {
    @TempDir
    Path tmp;

    static Path golden() {
        return SharedData.goldenModel("deepseek2-f32");
    }

    @Test
    void configurationComesFromTheMetadata() {
        try (GgufFile f = GgufFile.open(golden())) {
            Transformer tf = Transformer.of(f);
            ModelConfig c = tf.config();
            assertEquals("deepseek2", c.arch().name());
            assertEquals(new ModelConfig.Mla(64, 64, 32, 16, 32), c.mla());
            assertEquals(80, c.headDim()); // the cached row: kv_lora_rank + the rope part
            assertEquals(64, c.valueDim());
            assertEquals(1, c.kvHeadCount());
            assertTrue(c.valuesInKeys());
            assertEquals(1, c.kvRowsPerToken());
            assertEquals(Architecture.Gating.SIGMOID_THEN_TOP_K, c.gating()); // expert_gating_func 2
            assertEquals(4, c.expertGroupCount());
            assertEquals(2, c.expertGroupUsedCount());
            assertEquals(1, c.leadingDenseBlocks());
            assertTrue(c.normalizeTopK());
            assertEquals(2.5f, c.expertWeightsScale());
            assertEquals(16, c.expertCount());
            assertEquals(4, c.expertUsedCount());
            assertFalse(c.isMoeLayer(0));
            assertTrue(c.isMoeLayer(1));
            // kq_scale = m² / sqrt(32 + 16), m = 1 + yarn_log_multiplier · ln 40 (the file stores 0.1 as a float)
            double m = 1 + (double) 0.1f * Math.log(40);
            assertEquals((float) (m * m / Math.sqrt(48)), c.attentionScale());
            // the rotation's YaRN magnitude is exactly 1: angles at position 0 are cos 1, sin 0
            float[] cos = new float[8], sin = new float[8];
            c.rope(null).angles(0, cos, sin, 0);
            for (float x : cos) assertEquals(1f, x);

            ModelWeights.Layer dense = tf.weights().layers[0], moe = tf.weights().layers[1];
            assertNotNull(dense.dense());
            assertNull(dense.moe());
            assertEquals(256, dense.dense().hidden());
            assertNull(moe.dense());
            assertNotNull(moe.moe().selectionBias());
            assertEquals(64, moe.moe().shared().hidden());
            assertNull(moe.moe().sharedGate()); // DeepSeek's shared expert is not gated
            for (ModelWeights.Layer l : tf.weights().layers) {
                assertNull(l.wq());
                assertEquals(4 * 64, l.latent().kB().rows());
                assertEquals(32, l.latent().kB().cols());
                assertEquals(4 * 32, l.latent().vB().rows());
                assertEquals(64, l.latent().vB().cols());
                assertEquals(6, l.attentionMatrices().size());
            }
        }
    }

    @Test
    void theCacheHoldsOneLatentRowPerPositionAndLayer() {
        try (GgufFile f = GgufFile.open(golden())) {
            Transformer tf = Transformer.of(f);
            ModelConfig c = tf.config();
            for (KvType type : new KvType[]{KvType.F32, KvType.F16}) {
                try (KvCache cache = new KvCache(c, 600, type, tf.backend().kvPool(64L << 20))) {
                    tf.forward(new int[]{1, 5, 9}, 3, cache, false, null);
                    // 2 layers × one page of rows of 80 values, no value store
                    assertEquals(2 * KvPool.pageBytes(type, 1, 80), cache.bytes(), type.toString());
                    cache.appendRandom(tf.backend(), 300, 3);
                    assertEquals(2 * 2 * KvPool.pageBytes(type, 1, 80), cache.bytes(), type + " after 303 positions");
                    assertEquals(303, cache.keepable(303));
                    cache.truncate(100);
                    assertEquals(2 * KvPool.pageBytes(type, 1, 80), cache.bytes(), type + " truncated");
                }
            }
            String msg = assertThrows(io.moe4j.Moe4jException.class, () -> new KvCache(c, 8, KvType.Q8_0)).getMessage();
            assertTrue(msg.contains("rows of 80 values") && msg.contains("kv_lora_rank 64 + rope 16"), msg);
        }
    }

    /**
     * The sizes main's context planning uses count latent attention's one store: {@link KvCache#bytesFor} is what a
     * full cache holds (filled by {@link KvCache#appendRandom}, which writes key rows only), and
     * {@link KvCache#contextWithin} inverts it.
     */
    @Test
    void theCacheSizeForAContextCountsOneRowPerPosition() {
        try (GgufFile f = GgufFile.open(golden())) {
            Transformer tf = Transformer.of(f);
            ModelConfig c = tf.config();
            long page = KvPool.pageBytes(KvType.F16, 1, 80);
            assertEquals(2 * 3 * page, KvCache.bytesFor(c, KvType.F16, 600)); // 2 layers × 3 pages, no value pages
            try (KvCache cache = new KvCache(c, 600, KvType.F16, tf.backend().kvPool(64L << 20))) {
                cache.appendRandom(tf.backend(), 600, 7);
                assertEquals(KvCache.bytesFor(c, KvType.F16, 600), cache.bytes());
            }
            assertEquals(768, KvCache.contextWithin(c, KvType.F16, 2 * 3 * page, 4096));
            assertEquals(512, KvCache.contextWithin(c, KvType.F16, 2 * 3 * page - 1, 4096));
        }
    }

    /**
     * A context shift cannot rotate latent rows (their rotary part is the end of the row, which
     * {@code Backend.shiftKv} does not turn): the cache says so and is left as it was, and the session evaluates the
     * tokens it keeps again, so that it continues exactly as a fresh session fed them.
     */
    @Test
    void aContextShiftEvaluatesTheKeptTokensAgain() {
        try (Model m = Model.load(golden())) {
            int[] prompt = GoldenCase.byId("deepseek2-f32").promptTokens();
            int[] first = Arrays.copyOf(prompt, 40);
            try (Session s = m.newSession(64, KvType.F16); Session fresh = m.newSession(64, KvType.F16)) {
                s.feed(first);
                long bytes = s.cache().bytes();
                assertFalse(m.transformer().shift(s.cache(), 4, 10));
                assertEquals(40, s.length());
                assertEquals(bytes, s.cache().bytes());
                s.shift(4, 10);
                int[] kept = new int[30];
                System.arraycopy(first, 0, kept, 0, 4);
                System.arraycopy(first, 14, kept, 4, 26);
                assertArrayEquals(kept, s.tokens());
                int[] withNext = Arrays.copyOf(kept, 31);
                withNext[30] = prompt[40];
                assertArrayEquals(fresh.feed(withNext), s.feed(prompt[40]));
            }
        }
    }

    /**
     * A shared prefix and a continued sequence see the same cache rows: evaluating a prompt, sharing its cache and
     * going on gives the logits of going on in the original.
     */
    @Test
    void aSharedPrefixContinuesLikeTheOriginal() {
        try (GgufFile f = GgufFile.open(golden())) {
            Transformer tf = Transformer.of(f);
            ModelConfig c = tf.config();
            int[] prompt = Arrays.copyOf(GoldenCase.byId("deepseek2-f32").promptTokens(), 30);
            try (KvCache a = new KvCache(c, 64, KvType.F16); KvCache b = new KvCache(c, 64, KvType.F16)) {
                tf.forward(prompt, prompt.length, a, false, null);
                b.shareFrom(a, 20);
                float[] viaShare = tf.forward(Arrays.copyOfRange(prompt, 20, 30), 10, b, false, null);
                a.truncate(20);
                float[] direct = tf.forward(Arrays.copyOfRange(prompt, 20, 30), 10, a, false, null);
                assertArrayEquals(direct, viaShare);
            }
        }
    }

    /** Copies the golden file, editing its metadata and tensors ({@code tensors}: name → [type, dims, data]). */
    Path variant(String name, Consumer<Map<String, GgufValue>> editMetadata, Consumer<Map<String, Object[]>> editTensors) {
        Path dst = tmp.resolve(name + ".gguf");
        try (GgufFile f = GgufFile.open(golden())) {
            Map<String, GgufValue> md = new LinkedHashMap<>(f.metadata().asMap());
            editMetadata.accept(md);
            Map<String, Object[]> tensors = new LinkedHashMap<>();
            for (GgufTensor t : f.tensors().values()) tensors.put(t.name(), new Object[]{t.type(), t.dims(), t.data()});
            editTensors.accept(tensors);
            try (GgufWriter w = GgufWriter.create(dst, md)) {
                tensors.forEach((n, t) -> w.addTensor(n, (GgmlType) t[0], (long[]) t[1]));
                tensors.forEach((n, t) -> {
                    if (t[2] instanceof float[] a) w.writeData(n, a);
                    else w.writeData(n, (java.lang.foreign.MemorySegment) t[2]);
                });
                w.finish();
            }
        }
        return dst;
    }

    /** An older conversion's unsplit kv_b_proj in place of attn_k_b and attn_v_b. */
    static void unsplitKvB(Map<String, Object[]> tensors) {
        for (int i = 0; i < 2; i++) {
            tensors.remove("blk." + i + ".attn_k_b.weight");
            tensors.remove("blk." + i + ".attn_v_b.weight");
            tensors.put("blk." + i + ".attn_kv_b.weight", new Object[]{GgmlType.F32, new long[]{64, 4 * (32 + 32)}, new float[64 * 256]});
        }
    }

    @Test
    void anOlderConversionWithTheUnsplitKvBIsRefusedByName() {
        // The variants are written outside assertThrows, so that a missing ../shared skips the test instead of failing it.
        java.nio.file.Path kvb = variant("kvb", md -> {
        }, DeepSeek2Test::unsplitKvB);
        String msg = assertThrows(ModelFormatException.class, () -> Model.load(kvb).close()).getMessage();
        assertTrue(msg.contains("'blk.0.attn_kv_b.weight'") && msg.contains("attn_k_b"), msg);
        // such files also lack the MLA head sizes, which the configuration misses first
        java.nio.file.Path old = variant("kvb-old", md -> {
            md.remove("deepseek2.attention.key_length_mla");
            md.remove("deepseek2.attention.value_length_mla");
        }, DeepSeek2Test::unsplitKvB);
        msg = assertThrows(ModelFormatException.class, () -> Model.load(old).close()).getMessage();
        assertTrue(msg.contains("key_length_mla") && msg.contains("attn_kv_b"), msg);
    }

    @Test
    void aCachedRowThatDisagreesWithTheLatentSizesIsNamed() {
        java.nio.file.Path keylen = variant("keylen", md -> md.put("deepseek2.attention.key_length", GgufValue.ofU32(48)), t -> {
        });
        String msg = assertThrows(ModelFormatException.class, () -> Model.load(keylen).close()).getMessage();
        assertTrue(msg.contains("key_length 48") && msg.contains("kv_lora_rank"), msg);
    }

    /**
     * Without a query LoRA (q_lora_rank 0, DeepSeek-V2-Lite) the query is one attn_q projection: such a file loads
     * without attn_q_a, and its logits are the same batched and one token at a time.
     */
    @Test
    void aPlainQueryProjectionReplacesTheLowRankOne() {
        Random r = new Random(5);
        float[] wq = new float[128 * 192];
        for (int i = 0; i < wq.length; i++) wq[i] = (float) (r.nextGaussian() / Math.sqrt(128));
        Path p = variant("noqlora", md -> md.remove("deepseek2.attention.q_lora_rank"), t -> {
            for (int i = 0; i < 2; i++) {
                t.remove("blk." + i + ".attn_q_a.weight");
                t.remove("blk." + i + ".attn_q_a_norm.weight");
                t.remove("blk." + i + ".attn_q_b.weight");
                t.put("blk." + i + ".attn_q.weight", new Object[]{GgmlType.F32, new long[]{128, 192}, wq});
            }
        });
        try (GgufFile f = GgufFile.open(p)) {
            Transformer tf = Transformer.of(f);
            assertEquals(0, tf.config().mla().qLoraRank());
            assertNull(tf.weights().layers[0].latent().qA());
            int[] prompt = Arrays.copyOf(GoldenCase.byId("deepseek2-f32").promptTokens(), 12);
            float[] batched;
            try (KvCache cache = new KvCache(tf.config(), 16, KvType.F32)) {
                batched = tf.forward(prompt, prompt.length, cache, true, null);
            }
            int vocab = tf.vocabSize();
            try (KvCache cache = new KvCache(tf.config(), 16, KvType.F32)) {
                for (int t = 0; t < prompt.length; t++) {
                    float[] one = tf.forward(new int[]{prompt[t]}, 1, cache, false, null);
                    assertArrayEquals(Arrays.copyOfRange(batched, t * vocab, (t + 1) * vocab), one, "token " + t);
                }
            }
            for (float x : batched) assertTrue(Float.isFinite(x));
        }
    }
}
