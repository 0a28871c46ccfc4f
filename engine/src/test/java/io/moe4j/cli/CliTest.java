package io.moe4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI end to end, in-process: what a user types and what they see. */
class CliTest {
    static Main.Captured run(String... args) {
        return Main.capture(args);
    }

    @Test
    void runPrintsTheRecordedStories260KTextForBothPrompts() throws IOException {
        Path models = SharedData.models();
        JsonNode golden = new ObjectMapper().readTree(models.resolve("stories260K.golden.json").toFile());
        Tokenizer tok;
        try (GgufFile f = GgufFile.open(models.resolve("stories260K.gguf"))) {
            tok = Tokenizer.fromGguf(f.metadata());
        }
        for (JsonNode c : golden.get("cases")) {
            // llama2.c's steps count positions, the prompt included; -n counts new tokens. The prompt's last position
            // already predicts the first new token, so steps positions hold steps - prompt + 1 new tokens.
            int promptTokens = tok.encode(c.get("prompt").asText(), tok.addBosByDefault(), true).length;
            int newTokens = c.get("steps").asInt() - promptTokens + 1;
            Main.Captured r = run("run", "-m", models.resolve("stories260K.gguf").toString(), "-p", c.get("prompt").asText(),
                    "-n", Integer.toString(newTokens), "--temp", "0");
            assertEquals(0, r.exit(), r.err());
            assertEquals(c.get("decoded_text").asText() + "\n", r.out());
            assertTrue(r.err().contains("tokens/s"), "timings on stderr: " + r.err());
        }
    }

    @Test
    void runWithoutAModelUsesTheEmbeddedDefaultAndSaysSo() {
        Main.Captured r = run("run", "-p", "Once upon a time", "--max-new-tokens", "12", "--seed", "7");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("embedded default model"), r.err());
        assertTrue(r.out().startsWith("Once upon a time") && r.out().length() > "Once upon a time".length() + 3, r.out());
        // same seed, same text
        assertEquals(r.out(), run("run", "-p", "Once upon a time", "--max-new-tokens", "12", "--seed", "7").out());
    }

    @Test
    void logitsWritesTheGoldenFormatBatchedAndIncremental(@TempDir Path tmp) throws IOException {
        Path model = SharedData.models().resolve("stories260K.gguf");
        Path batch = tmp.resolve("b.f32"), inc = tmp.resolve("i.f32");
        assertEquals(0, run("logits", "-m", model.toString(), "--tokens", "1,403,407,261,378", "--out", batch.toString()).exit());
        assertEquals(0, run("logits", "-m", model.toString(), "--tokens", "1,403,407,261,378", "--out", inc.toString(), "--incremental").exit());
        float[] b = floats(batch), i = floats(inc);
        assertEquals(5 * 512, b.length);
        JsonNode golden = new ObjectMapper().readTree(SharedData.models().resolve("stories260K.golden.json").toFile());
        JsonNode rows = golden.get("prompt_logits").get("logits");
        double max = 0;
        for (int t = 0; t < 5; t++) {
            for (int v = 0; v < 512; v++) {
                max = Math.max(max, Math.abs(b[t * 512 + v] - rows.get(t).get(v).asDouble()));
                max = Math.max(max, Math.abs(i[t * 512 + v] - rows.get(t).get(v).asDouble()));
            }
        }
        assertTrue(max < 1e-4, "max |logits - float64 llama2.c reference| = " + max);
    }

    @Test
    void tokenizePrintsAJsonArray() {
        Main.Captured r = run("tokenize", "-m", SharedData.models().resolve("stories260K.gguf").toString(), "--text", "Once upon a time");
        assertEquals(0, r.exit(), r.err());
        assertEquals("[1, 403, 407, 261, 378]", r.out().trim());
    }

    @Test
    void inspectDescribesAMoeModel() {
        Path model = SharedData.golden().resolve("models/qwen2moe-q8_0.gguf");
        Main.Captured r = run("inspect", model.toString());
        assertEquals(0, r.exit(), r.err());
        for (String s : new String[]{"qwen2moe", "4 used per token".replace("4", "2"), "shared expert", "active per token",
                "blk.0.ffn_gate_exps.weight", "Q8_0", "decode reads"}) {
            assertTrue(r.out().contains(s), "inspect output lacks '" + s + "':\n" + r.out());
        }
    }

    @Test
    void inspectDescribesDeepSeeksLatentAttentionAndBlockKinds() {
        Path model = SharedData.golden().resolve("models/deepseek2-q8_0.gguf");
        Main.Captured r = run("inspect", "--no-tensors", model.toString());
        assertEquals(0, r.exit(), r.err());
        for (String s : new String[]{"deepseek2", "latent (MLA), 4 heads, q rank 64, kv rank 64", "80 values per token and layer",
                "best 2 of 4 groups", "SIGMOID_THEN_TOP_K with a selection bias", "shared expert FFN 64", "scale 2.5",
                "dense, hidden 256 (blocks 0-0", "active per token", "decode reads"}) {
            assertTrue(r.out().contains(s), "inspect output lacks '" + s + "':\n" + r.out());
        }
    }

    @Test
    void badInputGivesAClearErrorNotAStackTrace(@TempDir Path tmp) throws IOException {
        Path junk = tmp.resolve("junk.gguf");
        Files.write(junk, new byte[]{'N', 'O', 'P', 'E', 0, 0, 0, 0});
        Main.Captured r = run("run", "-m", junk.toString(), "-p", "hi");
        assertEquals(1, r.exit());
        assertTrue(r.err().startsWith("error: ") && r.err().contains("not a GGUF file"), r.err());
        Main.Captured missing = run("inspect", tmp.resolve("nope.gguf").toString());
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("not found"), missing.err());
    }

    @Test
    void serveBenchOptionsAreCheckedBeforeAnythingRuns() {
        Main.Captured alone = run("serve", "--tokens", "3");
        assertEquals(1, alone.exit());
        assertTrue(alone.err().contains("go with --bench"), alone.err());
        Main.Captured zero = run("serve", "--bench", "--streams", "1,0");
        assertEquals(1, zero.exit());
        assertTrue(zero.err().contains("--streams takes counts of at least 1"), zero.err());
    }

    @Test
    void nCountsNewTokensAsLlamaCppAndOpenAiDo() {
        Path model = SharedData.models().resolve("stories260K.gguf");
        Main.Captured r = run("run", "-m", model.toString(), "-p", "Once upon a time", "-n", "32", "--temp", "0");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("decode: 32 tokens"), r.err());
        Main.Captured same = run("run", "-m", model.toString(), "-p", "Once upon a time", "--max-new-tokens", "32", "--temp", "0");
        assertEquals(r.out(), same.out());
    }

    @Test
    void outOfRangeValuesAreRefusedNamingTheFlag() {
        String[][] cases = {
                {"-n", "-5", "-n must be -1"}, {"--temp", "-1", "--temp must be"}, {"--top-p", "0", "--top-p must be"},
                {"--top-k", "-1", "--top-k must be"}, {"--min-p", "2", "--min-p must be"}, {"--repeat-penalty", "0", "--repeat-penalty must be"},
                {"--presence-penalty", "3", "--presence-penalty must be"}, {"--ctx", "-1", "--ctx must be"}, {"--threads", "0", "--threads must be"},
                {"--batch", "0", "--batch must be"}, {"--rope-scale", "0", "--rope-scale must be"},
                {"--yarn-ext-factor", "2", "--yarn-ext-factor must be"}, {"--yarn-orig-ctx", "0", "--yarn-orig-ctx must be"}};
        for (String[] c : cases) {
            Main.Captured r = run("run", c[0], c[1]);
            assertEquals(1, r.exit(), String.join(" ", c));
            assertTrue(r.err().startsWith("error: " + c[2]), c[0] + " " + c[1] + ": " + r.err());
            assertEquals("", r.out(), "nothing generated for " + c[0] + " " + c[1]);
        }
    }

    @Test
    void anUnknownRopeScalingTypeIsAUsageErrorThatListsTheTypes() {
        Main.Captured r = run("run", "--rope-scaling", "cubic");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("error: Invalid value for option '--rope-scaling': --rope-scaling takes none, linear or yarn, got 'cubic'"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void runSaysWhichContextItUsesAndHowMuchKvMemoryItMayTake() {
        Main.Captured r = run("run", "-p", "Once upon a time", "-n", "2", "--batch", "3");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().lines().anyMatch(l -> l.matches("moe4j: context 2048 tokens \\(the model's own\\), KV cache F16 up to [0-9.]+ MiB per sequence, budget .*")), r.err());
        Main.Captured small = run("run", "-p", "Once upon a time", "-n", "2", "--kv-budget", "1m", "--kv-type", "f32");
        assertEquals(0, small.exit(), small.err());
        assertTrue(small.err().lines().anyMatch(l -> l.matches("moe4j: context \\d+ tokens \\(what fits in the KV budget; the model's own is 2048\\), KV cache F32 up to 1.0 MiB per sequence, budget 1.0 MiB")), small.err());
    }

    @Test
    void aPromptLongerThanTheContextIsAnErrorBeforeAnyOutput() {
        Main.Captured r = run("run", "-c", "4", "-p", "Once upon a time there was a little dog");
        assertEquals(1, r.exit());
        assertEquals("", r.out(), "the prompt must not be echoed before the error");
        assertTrue(r.err().lines().anyMatch(l -> l.startsWith("error: the prompt is ") && l.contains("context of 4 tokens")), r.err());
    }

    @Test
    void aFullContextStopsWithReasonLengthOrWithContextShiftGoesOn() {
        String model = SharedData.models().resolve("stories260K.gguf").toString();
        Main.Captured full = run("run", "-m", model, "-p", "Once upon a time", "-n", "60", "--temp", "0", "-c", "24");
        assertEquals(0, full.exit(), full.err());
        assertTrue(full.err().contains("decode: 20 tokens") && full.err().contains("stop: length (the context of 24 tokens is full"),
                full.err());
        Main.Captured shifted = run("run", "-m", model, "-p", "Once upon a time", "-n", "60", "--temp", "0", "-c", "24",
                "--context-shift", "--keep", "2");
        assertEquals(0, shifted.exit(), shifted.err());
        assertTrue(shifted.err().contains("decode: 60 tokens") && shifted.err().contains("stop: max_tokens"), shifted.err());
        assertTrue(shifted.out().startsWith(full.out().stripTrailing()), "the same text until the context is full:\n"
                + full.out() + "\n" + shifted.out());

        ChatCommandTest.Result chat = ChatCommandTest.chat("Once upon a time\nGo on\n", "-m", model, "-c", "64", "-n", "100",
                "--temp", "0", "--context-shift");
        assertEquals(0, chat.exit(), chat.err());
        assertEquals(2, ChatCommandTest.stats(chat.err()).size(), chat.err());
        assertFalse(chat.err().contains("is full"), chat.err());
        ChatCommandTest.Result cut = ChatCommandTest.chat("Once upon a time\n", "-m", model, "-c", "64", "-n", "100", "--temp", "0");
        assertTrue(cut.err().contains("tokens is full (stop: length)"), cut.err());

        String[][] cases = {
                {"--keep -1", "--keep must be 0 or more, got -1"},
                {"--keep 3", "--keep 3 has no effect without --context-shift"},
                {"--context-shift --keep 24 -c 24", "--keep 24 must be less than the context size of 24 tokens (-c/--ctx)"}};
        for (String[] c : cases) {
            for (String command : new String[]{"run", "chat"}) {
                List<String> args = new ArrayList<>(List.of(command, "-m", model));
                args.addAll(List.of(c[0].split(" ")));
                Main.Captured r = command.equals("run") ? run(args.toArray(String[]::new)) : chatWithoutInput(args);
                assertEquals(1, r.exit(), command + " " + c[0] + ": " + r.err());
                assertTrue(r.err().startsWith("error: " + c[1]) || r.err().contains("\nerror: " + c[1]), command + " " + c[0] + ": " + r.err());
                assertEquals("", r.out(), command + " " + c[0]);
            }
        }
    }

    private static Main.Captured chatWithoutInput(List<String> args) {
        ChatCommandTest.Result r = ChatCommandTest.chat("", args.subList(1, args.size()).toArray(String[]::new));
        return new Main.Captured(r.exit(), r.out(), r.err());
    }

    @Test
    void everyModelCommandDefaultsToTheEmbeddedModelAndNamesItsPath() {
        for (String[] args : new String[][] {{"inspect", "--no-tensors"}, {"tokenize", "--text", "Hello"}}) {
            Main.Captured r = run(args);
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.err().contains("embedded default model") && r.err().contains(".gguf"), r.err());
            assertTrue(!r.out().isBlank());
        }
    }

    @Test
    void aDirectoryGivenAsTheModelIsNamedAsSuch(@TempDir Path tmp) {
        for (String[] args : new String[][] {{"run", "-m", tmp.toString()}, {"inspect", tmp.toString()},
                {"tokenize", "-m", tmp.toString(), "--text", "x"}, {"serve", "-m", tmp.toString(), "--port", "0"}}) {
            Main.Captured r = run(args);
            assertEquals(1, r.exit(), String.join(" ", args));
            assertTrue(r.err().contains("error: " + tmp + " is a directory, not a GGUF model file"), r.err());
        }
    }

    @Test
    void serveStartupProblemsEndWithOneLineAndExitCode1(@TempDir Path tmp) throws IOException {
        Main.Captured range = run("serve", "--port", "99999");
        assertEquals(1, range.exit());
        assertTrue(range.err().startsWith("error: port must be in [0, 65535]"), range.err());
        try (var busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Main.Captured inUse = run("serve", "--port", Integer.toString(busy.getLocalPort()));
            assertEquals(1, inUse.exit(), inUse.err());
            assertTrue(inUse.err().contains("error: cannot listen on 127.0.0.1:" + busy.getLocalPort()) && inUse.err().contains("in use"),
                    inUse.err());
            assertTrue(!inUse.err().contains("\tat "), "no stack trace: " + inUse.err());
        }
        Main.Captured host = run("serve", "--host", "no-such-host.invalid", "--port", "0");
        assertEquals(1, host.exit());
        assertTrue(host.err().contains("error: cannot listen on no-such-host.invalid:0") && host.err().contains("--host"), host.err());
        Path notGguf = tmp.resolve("README.md");
        Files.writeString(notGguf, "# not a model\n");
        Main.Captured bad = run("serve", "-m", notGguf.toString(), "--port", "0");
        assertEquals(1, bad.exit(), "serve must stop when the model cannot be loaded: " + bad.err());
        assertTrue(bad.err().contains("error: cannot load the model") && bad.err().contains("not a GGUF file"), bad.err());
    }

    static float[] floats(Path p) throws IOException {
        byte[] bytes = Files.readAllBytes(p);
        float[] f = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }
}
