package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelStatsTest {

    @Test
    void batchStepBytesCountsEachTouchedExpertOnce() {
        // 8 experts of 100 bytes (over all layers), 2 per token; 1000 bytes of everything else.
        ModelStats s = new ModelStats(0, 0, 0, 0, 1000 + 2 * 100, 800, 8, 2);
        assertEquals(1200, s.batchStepBytes(1), 1e-9, "one token reads what decoding reads");
        // 8 tokens: 8 * (1 - (6/8)^8) = 7.2 experts touched on average
        assertEquals(1000 + 100 * 8 * (1 - Math.pow(0.75, 8)), s.batchStepBytes(8), 1e-9);
        assertTrue(s.batchStepBytes(1000) <= 1000 + 800 + 1e-9, "never more than every expert");
        assertThrows(IllegalArgumentException.class, () -> s.batchStepBytes(0));

        ModelStats dense = new ModelStats(0, 0, 0, 0, 5000, 0, 0, 0);
        assertEquals(5000, dense.batchStepBytes(8), 1e-9, "a dense model reads its weights once per step");
    }

    @Test
    void splitOfARealMoeFile() {
        GoldenCase c = GoldenCase.byId("qwen2moe-q8_0");
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            ModelConfig cfg = Transformer.of(f).config();
            ModelStats s = ModelStats.of(f, cfg);
            assertEquals(cfg.expertCount(), s.expertCount());
            assertEquals(cfg.expertUsedCount(), s.expertUsedCount());
            assertTrue(s.expertBytes() > 0 && s.expertBytes() < s.totalBytes());
            // one token: the k/E share of the expert bytes, as decodeBytesPerToken counts them
            assertEquals(s.decodeBytesPerToken(), s.batchStepBytes(1), s.expertCount() * 2.0, "per-tensor rounding only");
            assertTrue(s.batchStepBytes(8) > s.batchStepBytes(1) && s.batchStepBytes(8) < 8 * s.batchStepBytes(1));
        }
    }

    /**
     * DeepSeek's active bytes: the dense leading block, the shared expert, the selection bias and every latent
     * attention tensor are read whole, the routed experts k of E, the untied embedding table one row.
     */
    @Test
    void deepSeekCountsDenseBlocksSharedExpertsAndLatentAttentionWhole() {
        try (GgufFile f = GgufFile.open(GoldenCase.byId("deepseek2-f32").modelPath())) {
            ModelStats s = ModelStats.of(f, Transformer.of(f).config());
            long routed = 0, whole = 0;
            for (var t : f.tensors().values()) {
                if (t.name().contains("_exps.")) routed += t.byteSize();
                else if (!t.name().equals("token_embd.weight")) whole += t.byteSize();
            }
            // the golden file: one MoE block of 16 experts of 64, 4 used; every tensor F32
            assertEquals(3L * 128 * 64 * 16 * 4, routed);
            assertEquals(routed, s.expertBytes());
            long embeddingRow = 128 * 4;
            assertEquals(whole + routed * 4 / 16 + embeddingRow, s.decodeBytesPerToken());
            assertTrue(f.tensor("blk.0.ffn_gate.weight") != null && f.tensor("blk.1.ffn_gate_shexp.weight") != null
                    && f.tensor("blk.1.attn_k_b.weight") != null, "the golden file has what the count is about");
        }
    }
}
