package io.moe4j.tools.synth;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Logits;
import io.moe4j.tools.quant.FileType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SynthTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 40, 300, 7, 99, 256, 3, 500, 42, 17, 260, 261};

    @ParameterizedTest
    @ValueSource(strings = {"tiny", "tiny-dense", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe", "tiny-qwen2moe", "tiny-olmoe", "tiny-gpt-oss", "tiny-deepseek2"})
    void everyTinyPresetLoadsAndGivesFiniteLogits(String preset) {
        Path out = tmp.resolve(preset + ".gguf");
        Synth.write(new Synth.Spec(Presets.get(preset), FileType.F32, null, 7), out, 2, true);
        float[] logits = Logits.of(out, PROMPT);
        double sum = 0, sq = 0;
        for (float f : logits) {
            assertTrue(Float.isFinite(f), preset + ": non-finite logit");
            sum += f;
            sq += (double) f * f;
        }
        double mean = sum / logits.length, std = Math.sqrt(sq / logits.length - mean * mean);
        System.out.printf("%-14s logits std %.3f max |l| %.3f%n", preset, std, Logits.maxAbs(logits));
        assertTrue(std > 0.1 && std < 20, preset + ": logits std " + std);
    }

    @Test
    void deepModelsKeepActivationsFinite() {
        ModelShape.Builder b = Presets.get("tiny").toBuilder();
        b.layers = 48;
        Path out = tmp.resolve("deep.gguf");
        Synth.write(new Synth.Spec(b.build(), FileType.F32, null, 3), out, 2, true);
        float[] logits = Logits.of(out, PROMPT);
        for (float f : logits) assertTrue(Float.isFinite(f));
        assertTrue(Logits.maxAbs(logits) < 50, "max |logit| " + Logits.maxAbs(logits));
    }

    @Test
    void deterministicForASeedWhateverTheThreadCount() throws Exception {
        ModelShape s = Presets.get("tiny-qwen3moe");
        Path a = tmp.resolve("a.gguf"), b = tmp.resolve("b.gguf"), c = tmp.resolve("c.gguf");
        Synth.write(new Synth.Spec(s, FileType.BF16, null, 11), a, 1, true);
        Synth.write(new Synth.Spec(s, FileType.BF16, null, 11), b, 2, true);
        Synth.write(new Synth.Spec(s, FileType.BF16, null, 12), c, 2, true);
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(c)));
    }

    @Test
    void layoutFollowsLlamaCppNamesAndTypes() {
        Path out = tmp.resolve("t.gguf");
        Synth.write(new Synth.Spec(Presets.get("tiny-gpt-oss"), FileType.F16, null, 1), out, 2, true);
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals("gpt-oss", f.metadata().getString("general.architecture"));
            assertEquals(GgmlType.F16, f.tensor("blk.0.ffn_up_exps.weight").type());
            assertEquals(GgmlType.F32, f.tensor("blk.0.ffn_up_exps.bias").type());
            assertEquals(GgmlType.F32, f.tensor("blk.1.ffn_gate_inp.weight").type());
            assertEquals(GgmlType.F32, f.tensor("blk.1.attn_sinks.weight").type());
            assertEquals(512, f.metadata().getStringArray("tokenizer.ggml.tokens").length);
            assertEquals("gpt2", f.metadata().getString("tokenizer.ggml.model"));
            assertEquals(1, f.metadata().getInt("general.file_type"));
        }
    }

    @Test
    void denseEquivalentMatchesActiveAndTotalFfnParameters() {
        ModelShape moe = Presets.get("olmoe-1b-7b");
        ModelShape active = Presets.denseEquivalent(moe, false, 256);
        ModelShape total = Presets.denseEquivalent(moe, true, 256);
        assertEquals(moe.activeFfnParams(), active.totalFfnParams());
        assertEquals(moe.totalFfnParams(), total.totalFfnParams());
        assertEquals(moe.layers(), active.layers());
        assertEquals(moe.embd(), active.embd());
        assertEquals(moe.totalParams() - (long) moe.layers() * moe.embd() * moe.experts(), total.totalParams());
        ModelShape q = Presets.denseEquivalent(Presets.get("qwen3-30b-a3b"), false, 256);
        assertEquals("qwen3", q.arch());
        assertEquals(8 * 768, q.ff());
    }
}
