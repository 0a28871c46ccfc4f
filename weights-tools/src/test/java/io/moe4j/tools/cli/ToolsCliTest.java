package io.moe4j.tools.cli;

import io.moe4j.cli.Main;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.GgmlType;
import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The subcommands as bin/moe4j runs them: registered through ServiceLoader, clear errors, nothing half-written. */
class ToolsCliTest {
    @TempDir
    Path tmp;

    static Main.Captured run(String... args) {
        return Main.capture(args);
    }

    private void assertNothingWritten() throws Exception {
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(0, s.filter(p -> !p.getFileName().toString().startsWith("keep")).count(), "files left in " + tmp);
        }
    }

    @Test
    void synthThenQuantizeThenUpcycle() throws Exception {
        Path a = tmp.resolve("keep-a.gguf"), b = tmp.resolve("keep-b.gguf"), c = tmp.resolve("keep-c.gguf");
        Main.Captured r = run("synth", "--preset", "tiny-dense", "--type", "F16", "--layers", "3", "-q", "-o", a.toString());
        assertEquals(0, r.exit(), r.err());
        r = run("quantize", a.toString(), b.toString(), "--type", "Q8_0", "-q");
        assertEquals(0, r.exit(), r.err());
        r = run("upcycle", b.toString(), "-o", c.toString(), "--experts", "4", "--top-k", "2", "-q");
        assertEquals(0, r.exit(), r.err());
        try (GgufFile f = GgufFile.open(c)) {
            assertEquals(3, f.metadata().getInt("llama.block_count"));
            assertEquals(GgmlType.Q8_0, f.tensor("blk.2.ffn_down_exps.weight").type());
        }
        r = run("inspect", c.toString(), "--no-tensors");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("decode reads"), r.out());
    }

    /** A DeepSeek preset made small by the usual overrides, with fewer dense leading blocks; too few layers are refused. */
    @Test
    void deepSeekPresetWithOverrides() throws Exception {
        Path out = tmp.resolve("keep-ds.gguf");
        String[] small = {"--vocab", "512", "--embd", "256", "--heads", "8", "--kv-heads", "8", "--ff", "512", "--experts", "16", "--expert-ff", "64", "--shared-ff", "64",
                "--type", "Q4_K_M", "-q", "-o", out.toString()};
        Main.Captured r = run(concat(new String[]{"synth", "--preset", "deepseek-v3", "--layers", "3", "--dense-layers", "1"}, small));
        assertEquals(0, r.exit(), r.err());
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(1, f.metadata().getInt("deepseek2.leading_dense_block_count"));
            assertEquals(1536, f.metadata().getInt("deepseek2.attention.q_lora_rank"));
            assertTrue(f.tensor("blk.1.exp_probs_b.bias") != null && f.tensor("blk.0.ffn_gate.weight") != null);
        }
        r = run("inspect", out.toString(), "--no-tensors");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("576 values per token and layer"), r.out());
        Files.delete(out);
        r = run(concat(new String[]{"synth", "--preset", "deepseek-v3", "--layers", "3"}, small));
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("dense-layers 3") && r.err().contains("fewer than layers 3"), r.err());
        assertNothingWritten();
    }

    private static String[] concat(String[] a, String[] b) {
        return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
    }

    @Test
    void exportThenConvert() throws Exception {
        Path src = tmp.resolve("keep-src.gguf"), hf = tmp.resolve("keep-hf"), back = tmp.resolve("keep-back.gguf");
        assertEquals(0, run("synth", "--preset", "tiny-qwen3moe", "--type", "BF16", "-q", "-o", src.toString()).exit());
        Main.Captured r = run("export", src.toString(), "-o", hf.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        r = run("convert", hf.toString(), "-o", back.toString(), "--type", "Q8_0", "-q");
        assertEquals(0, r.exit(), r.err());
        try (GgufFile f = GgufFile.open(back)) {
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.ffn_up_exps.weight").type());
            assertEquals(GgmlType.F32, f.tensor("blk.0.attn_q_norm.weight").type());
            assertEquals("gpt-2", f.metadata().getString("tokenizer.ggml.pre"));
            assertEquals(io.moe4j.tools.vocab.ByteBpeBuilder.CHATML_TEMPLATE, f.metadata().getString("tokenizer.chat_template"));
        }
        r = run("export", tmp.resolve("missing.gguf").toString(), "-o", tmp.resolve("x").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("not found"), r.err());
    }

    @Test
    void expertsTypeWithQ8_0IsLlamaCppsMxfp4Moe() throws Exception {
        Path out = tmp.resolve("keep.gguf");
        Main.Captured r = run("quantize", SharedData.goldenModel("llama_moe-f32").toString(), out.toString(), "--type", "Q8_0",
                "--experts-type", "MXFP4", "-q");
        assertEquals(0, r.exit(), r.err());
        assertArrayEquals(Files.readAllBytes(SharedData.goldenModel("llama_moe-mxfp4_moe")), Files.readAllBytes(out));
    }

    @Test
    void badInputEndsWithAClearMessageAndNoFile() throws Exception {
        Path out = tmp.resolve("out.gguf");
        Main.Captured r = run("quantize", tmp.resolve("missing.gguf").toString(), out.toString(), "--type", "Q8_0");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("not found"), r.err());

        Files.writeString(tmp.resolve("keep-junk.gguf"), "not a model");
        r = run("quantize", tmp.resolve("keep-junk.gguf").toString(), out.toString(), "--type", "Q8_0");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("not a GGUF file"), r.err());

        r = run("synth", "--preset", "tiny", "--type", "Q5_K", "-o", out.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("unsupported type"), r.err());

        r = run("synth", "--preset", "tiny", "--experts", "4", "--top-k", "9", "-o", out.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("top-k"), r.err());

        r = run("synth", "--preset", "nope", "-o", out.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("unknown preset"), r.err());

        // gpt-oss-120b in F32 is ~470 GB: refused before anything is written
        r = run("synth", "--preset", "gpt-oss-120b", "--type", "F32", "-o", out.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("not enough disk space"), r.err());

        r = run("synth", "--preset", "tiny", "-o", tmp.resolve("no-such-dir/x.gguf").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("does not exist"), r.err());
        assertNothingWritten();
    }
}
