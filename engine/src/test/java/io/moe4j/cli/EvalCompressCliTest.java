package io.moe4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** eval, compress and decompress as a user runs them. */
class EvalCompressCliTest {
    @TempDir
    Path tmp;

    static final String STORY = "Once upon a time, there was a little dog named Spot. Spot liked to run in the park.\n"
            + "One day, Spot saw a big ball. He ran to the ball and played with it all day. Spot was very happy.\n";

    @Test
    void helpExitsZeroForEachCommand() {
        for (String c : new String[]{"eval", "compress", "decompress"}) {
            Main.Captured r = Main.capture(c, "--help");
            assertEquals(0, r.exit(), c);
            assertTrue(r.out().contains("Usage: moe4j " + c), r.out());
        }
    }

    @Test
    void evalPrintsTheFiguresAndWritesJson() throws IOException {
        Path text = tmp.resolve("story.txt"), json = tmp.resolve("eval.json");
        Files.writeString(text, STORY.repeat(3));
        String model = SharedData.models().resolve("stories260K.gguf").toString();
        Main.Captured r = Main.capture("eval", "-m", model, "-f", text.toString(), "--ctx", "64", "--json", json.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("perplexity") && r.out().contains("bits/byte") && r.out().contains("tokens/s"), r.out());
        assertTrue(r.err().contains("eval ["), "progress bar: " + r.err());
        JsonNode j = new ObjectMapper().readTree(json.toFile());
        double ce = j.get("result").get("cross_entropy_nats").asDouble();
        assertEquals(Math.exp(ce), j.get("result").get("perplexity").asDouble(), 1e-9);
        assertEquals(STORY.repeat(3).getBytes(StandardCharsets.UTF_8).length, j.get("result").get("bytes").asLong());
        assertTrue(ce > 0.3 && ce < 3, "stories260K on a story: " + ce + " nats per token");

        Main.Captured cmp = Main.capture("eval", "-m", model, "-f", text.toString(), "--ctx", "64", "--compare", model);
        assertEquals(0, cmp.exit(), cmp.err());
        assertTrue(cmp.out().contains("KL divergence") && cmp.out().contains("same top token: 100.000%"), cmp.out());

        Main.Captured other = Main.capture("eval", "-m", model, "-f", text.toString(), "--compare",
                SharedData.models().resolve("llama-2-tiny-random.gguf").toString());
        assertEquals(1, other.exit());
        assertTrue(other.err().contains("error:") && other.err().contains("vocabulary"), other.err());

        Main.Captured stride = Main.capture("eval", "-m", model, "-f", text.toString(), "--ctx", "64", "--stride", "64");
        assertEquals(1, stride.exit());
        assertTrue(stride.err().contains("error: --stride"), stride.err());
    }

    @Test
    void compressAndDecompressRoundTripAndReportTheRatio() throws IOException {
        Path in = tmp.resolve("story.txt"), packed = tmp.resolve("story.m4z"), out = tmp.resolve("story.out");
        Files.writeString(in, STORY);
        String model = SharedData.models().resolve("stories260K.gguf").toString();
        Main.Captured c = Main.capture("compress", "-m", model, in.toString(), packed.toString(), "--chunk-tokens", "40");
        assertEquals(0, c.exit(), c.err());
        assertTrue(c.err().contains("bits per byte") && c.err().contains("MB/s"), c.err());
        Main.Captured d = Main.capture("decompress", "-m", model, packed.toString(), out.toString());
        assertEquals(0, d.exit(), d.err());
        assertArrayEquals(Files.readAllBytes(in), Files.readAllBytes(out));

        Files.delete(out);
        Main.Captured wrong = Main.capture("decompress", "-m", SharedData.goldenModel("olmoe-q8_0").toString(),
                packed.toString(), out.toString());
        assertEquals(1, wrong.exit());
        assertTrue(wrong.err().contains("error: the file was compressed with another model"), wrong.err());
        assertFalse(Files.exists(out));
    }
}
