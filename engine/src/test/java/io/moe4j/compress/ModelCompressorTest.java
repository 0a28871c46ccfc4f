package io.moe4j.compress;

import io.moe4j.Model;
import io.moe4j.Moe4jException;
import io.moe4j.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Compression with stories260K: exact round trips of text and arbitrary bytes, the ratio, and every refusal. */
class ModelCompressorTest {
    static final String VERSION = "moe4j test";
    static Model model;
    static ModelCompressor coder;
    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        model = Model.load(SharedData.models().resolve("stories260K.gguf"));
        coder = new ModelCompressor(model, VERSION);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = ModelCompressorTest.class.getResourceAsStream(name)) {
            return in.readAllBytes();
        }
    }

    static ModelCompressor.Options options(int chunkTokens) {
        return new ModelCompressor.Options(chunkTokens, 256, 4, 2);
    }

    /** Compresses and decompresses {@code data}, checks the result byte for byte, returns the compressed size. */
    long roundTrip(byte[] data, ModelCompressor.Options o) throws IOException {
        Path in = tmp.resolve("in"), packed = tmp.resolve("packed"), out = tmp.resolve("out");
        Files.write(in, data);
        ModelCompressor.Stats s = coder.compress(in, packed, o, ModelCompressor.Progress.NONE);
        assertEquals(data.length, s.originalBytes());
        assertEquals(Files.size(packed), s.compressedBytes());
        coder.decompress(packed, out, o, ModelCompressor.Progress.NONE);
        assertArrayEquals(data, Files.readAllBytes(out));
        return s.compressedBytes();
    }

    @Test
    void englishStoriesRoundTripAndBeatXzAndZstd() throws Exception {
        byte[] text = resource("tinystories-like.txt");
        long ours = roundTrip(text, coder.defaultOptions());
        double bpb = 8.0 * ours / text.length;
        assertTrue(bpb < 1.6, "stories260K on TinyStories-like text: " + bpb + " bits per byte");
        Path in = tmp.resolve("in");
        for (String[] tool : new String[][]{{"xz", "-9", "-c"}, {"zstd", "-19", "-c", "-q"}}) {
            long theirs = externalSize(in, tool);
            if (theirs < 0) {
                System.out.println("SKIPPED comparison with " + tool[0] + ": not installed");
                continue;
            }
            assertTrue(ours < theirs, tool[0] + " " + tool[1] + ": " + theirs + " bytes, moe4j " + ours);
        }
    }

    /** The size of what {@code tool} writes for {@code file}, or -1 when the tool is not installed. */
    static long externalSize(Path file, String... tool) throws Exception {
        String[] cmd = Arrays.copyOf(tool, tool.length + 1);
        cmd[tool.length] = file.toString();
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            return -1;
        }
        long n = p.getInputStream().readAllBytes().length;
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", cmd));
        return n;
    }

    @Test
    void theProjectReadmeRoundTrips() throws IOException {
        Path readme = Path.of("..", "README.md");
        assumeTrue(Files.exists(readme), "the project's README.md is not at ../README.md");
        byte[] data = Files.readAllBytes(readme);
        long size = roundTrip(data, options(512));
        // stories260K knows children's stories, not Markdown tables and Java: it still compresses, a little
        assertTrue(size < data.length, "README: " + size + " of " + data.length + " bytes");
    }

    @Test
    void cjkEmojiAndOddCharactersRoundTrip() throws IOException {
        byte[] data = resource("unicode.txt");
        assertTrue(new String(data, StandardCharsets.UTF_8).contains("😀"));
        roundTrip(data, options(64));
    }

    @Test
    void randomBytesRoundTrip() throws IOException {
        byte[] data = new byte[10 * 1024];
        new Random(23).nextBytes(data);
        long size = roundTrip(data, options(1024));
        // byte tokens the model rarely predicts: it expands, but boundedly
        assertTrue(size < 3L * data.length, size + " bytes for 10 KiB of random bytes");
    }

    @Test
    void invalidUtf8MixedIntoTextRoundTrips() throws IOException {
        byte[] text = "Tom had a red ball.\n".getBytes(StandardCharsets.UTF_8);
        byte[] data = new byte[text.length * 3 + 6];
        System.arraycopy(text, 0, data, 0, text.length);
        data[text.length] = (byte) 0xC3; // a lead byte without its continuation
        data[text.length + 1] = (byte) 0xFF;
        data[text.length + 2] = (byte) 0xED; // a surrogate, not valid UTF-8
        data[text.length + 3] = (byte) 0xA0;
        data[text.length + 4] = (byte) 0x80;
        System.arraycopy(text, 0, data, text.length + 5, text.length);
        data[2 * text.length + 5] = (byte) 0xE6; // a CJK character cut short at the end of a piece
        System.arraycopy(text, 0, data, 2 * text.length + 6, text.length);
        roundTrip(data, options(16));
    }

    @Test
    void anEmptyFileRoundTrips() throws IOException {
        long size = roundTrip(new byte[0], coder.defaultOptions());
        assertTrue(size > 0 && size < 128, "header only: " + size);
    }

    @Test
    void chunkingDoesNotChangeTheResultOfDecompression() throws IOException {
        byte[] text = resource("tinystories-like.txt");
        // one lane per job and a batch of 5 on one side; 3 lanes and 1 job on the other
        Path in = tmp.resolve("in"), packed = tmp.resolve("packed"), out = tmp.resolve("out");
        Files.write(in, text);
        coder.compress(in, packed, new ModelCompressor.Options(100, 5, 1, 2), ModelCompressor.Progress.NONE);
        coder.decompress(packed, out, new ModelCompressor.Options(1, 1, 3, 1), ModelCompressor.Progress.NONE);
        assertArrayEquals(text, Files.readAllBytes(out));
    }

    @Test
    void anotherModelIsRefusedByName() throws IOException {
        Path in = tmp.resolve("in"), packed = tmp.resolve("packed"), out = tmp.resolve("out");
        Files.write(in, "Once upon a time there was a cat.".getBytes(StandardCharsets.UTF_8));
        coder.compress(in, packed, coder.defaultOptions(), ModelCompressor.Progress.NONE);
        // same vocabulary, other weights: only the header can tell
        try (Model other = Model.load(SharedData.goldenModel("llama_moe-q8_0"))) {
            Moe4jException e = assertThrows(Moe4jException.class, () -> new ModelCompressor(other, VERSION)
                    .decompress(packed, out, coder.defaultOptions(), ModelCompressor.Progress.NONE));
            assertTrue(e.getMessage().contains("another model") && e.getMessage().contains("stories260K.gguf")
                    && e.getMessage().contains("llama_moe-q8_0.gguf"), e.getMessage());
        }
        Moe4jException e = assertThrows(Moe4jException.class, () -> new ModelCompressor(model, "moe4j 9.9")
                .decompress(packed, out, coder.defaultOptions(), ModelCompressor.Progress.NONE));
        assertTrue(e.getMessage().contains(VERSION) && e.getMessage().contains("moe4j 9.9"), e.getMessage());
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void truncatedOrDamagedFilesFailClearlyAndWriteNothing() throws IOException {
        Path in = tmp.resolve("in"), packed = tmp.resolve("packed"), bad = tmp.resolve("bad"), out = tmp.resolve("out");
        byte[] text = Arrays.copyOf(resource("tinystories-like.txt"), 1500);
        Files.write(in, text);
        coder.compress(in, packed, options(100), ModelCompressor.Progress.NONE);
        byte[] good = Files.readAllBytes(packed);
        for (int cut : new int[]{0, 3, 20, 60, good.length / 2, good.length - 1}) {
            Files.write(bad, Arrays.copyOf(good, cut));
            CorruptDataException e = assertThrows(CorruptDataException.class,
                    () -> coder.decompress(bad, out, options(100), ModelCompressor.Progress.NONE), "cut at " + cut);
            assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("not a moe4j"), e.getMessage());
            assertFalse(Files.exists(out));
        }
        Random r = new Random(5);
        for (int i = 0; i < 12; i++) {
            byte[] damaged = good.clone();
            int at = 4 + r.nextInt(good.length - 4);
            damaged[at] ^= (byte) (1 << r.nextInt(8));
            Files.write(bad, damaged);
            Moe4jException e = assertThrows(Moe4jException.class,
                    () -> coder.decompress(bad, out, options(100), ModelCompressor.Progress.NONE), "byte " + at);
            assertTrue(e.getMessage().contains("damaged") || e.getMessage().contains("truncated")
                    || e.getMessage().contains("checksum") || e.getMessage().contains("another model")
                    || e.getMessage().contains("compressed by"), e.getMessage());
            assertFalse(Files.exists(out));
        }
        Files.write(bad, "plain text, not compressed".getBytes(StandardCharsets.UTF_8));
        Moe4jException e = assertThrows(Moe4jException.class,
                () -> coder.decompress(bad, out, options(100), ModelCompressor.Progress.NONE));
        assertTrue(e.getMessage().contains("not a moe4j compressed file"), e.getMessage());
    }
}
