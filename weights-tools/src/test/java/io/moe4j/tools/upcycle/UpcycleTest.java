package io.moe4j.tools.upcycle;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Logits;
import io.moe4j.SharedData;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.synth.Presets;
import io.moe4j.tools.synth.Synth;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UpcycleTest {
    @TempDir
    Path tmp;

    /** The golden prompt (stories260K vocabulary). */
    static final int[] PROMPT = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
            267, 337, 410, 408, 419, 292, 411, 322, 265, 262, 379, 419, 415, 271, 411, 426, 385, 328, 432, 358, 394, 261, 370,
            352, 266, 268, 388, 322, 265, 282, 295, 433, 426};

    @Test
    void stories260kWithFourExpertsTopTwoKeepsTheDenseLogits() {
        Path dense = SharedData.models().resolve("stories260K.gguf");
        Path moe = tmp.resolve("moe.gguf");
        Upcycler.upcycle(dense, moe, new Upcycler.Spec(4, 2, 0, 1), 2, true);
        try (GgufFile f = GgufFile.open(moe)) {
            assertEquals(4, f.metadata().getInt("llama.expert_count"));
            assertEquals(2, f.metadata().getInt("llama.expert_used_count"));
            assertArrayEquals(new long[]{64, 172, 4}, f.tensor("blk.0.ffn_gate_exps.weight").dims());
            assertArrayEquals(new long[]{172, 64, 4}, f.tensor("blk.4.ffn_down_exps.weight").dims());
            assertArrayEquals(new long[]{64, 4}, f.tensor("blk.4.ffn_gate_inp.weight").dims());
        }
        float[] a = Logits.of(dense, PROMPT), b = Logits.of(moe, PROMPT);
        double d = Logits.maxAbsDiff(a, b);
        // Not bit-exact: the MoE adds each expert's share to the residual separately (w1*y, then w2*y with w1 + w2 = 1),
        // the dense model adds y once, so float32 rounding of the residual differs by an ulp here and there.
        System.out.println("stories260K upcycled 4x top-2: max |dense - moe| = " + d + " (max |logit| " + Logits.maxAbs(a) + ")");
        assertTrue(d <= 1e-5, "max |dense - moe| = " + d + " > 1e-5");
    }

    @Test
    void noiseMakesExpertsDifferButKeepsTheModelClose() {
        Path dense = tmp.resolve("dense.gguf"), moe = tmp.resolve("moe.gguf");
        Synth.write(new Synth.Spec(Presets.get("tiny-qwen3"), FileType.F32, null, 5), dense, 2, true);
        Upcycler.upcycle(dense, moe, new Upcycler.Spec(4, 1, 0.01, 9), 2, true);
        try (GgufFile f = GgufFile.open(moe)) {
            assertEquals("qwen3moe", f.metadata().getString("general.architecture"));
            assertEquals(128, f.metadata().getInt("qwen3moe.expert_feed_forward_length"));
            var t = f.tensor("blk.1.ffn_up_exps.weight");
            assertEquals(GgmlType.F32, t.type());
            long per = t.byteSize() / 4;
            assertFalse(t.data().asSlice(0, per).mismatch(t.data().asSlice(per, per)) < 0, "experts 0 and 1 are identical");
        }
        int[] prompt = {1, 2, 3, 300, 400, 17};
        double d = Logits.maxAbsDiff(Logits.of(dense, prompt), Logits.of(moe, prompt));
        assertTrue(d > 0 && d < 0.5, "noise 0.01 moved logits by " + d);
    }

    @Test
    void refusesMoeInputAndBadCounts() {
        Path moe = tmp.resolve("m.gguf");
        Synth.write(new Synth.Spec(Presets.get("tiny"), FileType.F32, null, 5), moe, 2, true);
        Moe4jException e = assertThrows(Moe4jException.class, () -> Upcycler.upcycle(moe, tmp.resolve("x.gguf"), new Upcycler.Spec(4, 2, 0, 1), 1, true));
        assertTrue(e.getMessage().contains("already has experts"), e.getMessage());
        Path dense = tmp.resolve("d.gguf");
        Synth.write(new Synth.Spec(Presets.get("tiny-dense"), FileType.F32, null, 5), dense, 2, true);
        e = assertThrows(Moe4jException.class, () -> Upcycler.upcycle(dense, tmp.resolve("y.gguf"), new Upcycler.Spec(4, 5, 0, 1), 1, true));
        assertTrue(e.getMessage().contains("--top-k"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("x.gguf")));
        assertFalse(Files.exists(tmp.resolve("y.gguf")));
    }
}
