package io.moe4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * README rule 5 of the golden data: every string of stories260K_tokenization.json and every line of every
 * llama.cpp .inp/.out pair whose vocabulary GGUF is present tokenizes to exactly the recorded ids, and decoding
 * the ids gives back the text (SentencePiece: modulo the dummy leading space).
 */
class TokenizerGoldenTest {

    static Tokenizer load(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            return Tokenizer.fromGguf(f.metadata());
        }
    }

    static Path tokenizerDir() {
        return SharedData.golden().resolve("tokenizer");
    }

    static String hex(String s) {
        StringBuilder sb = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) sb.append(String.format("%02x", b & 0xFF));
        return sb.toString();
    }

    static byte[] concatPieces(Tokenizer t, int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(t.tokenBytes(id));
        return out.toByteArray();
    }

    // ---- stories260K (llama-tokenize output) ---------------------------------------------------------------------

    @TestFactory
    Stream<DynamicNode> stories260KTokenization() throws IOException {
        JsonNode root = new ObjectMapper().readTree(tokenizerDir().resolve("stories260K_tokenization.json").toFile());
        Tokenizer t = load(SharedData.models().resolve(root.get("model").asText()));
        assertEquals(Tokenizer.Kind.SPM, t.kind());
        assertTrue(t.addBosByDefault(), "llama-tokenize added BOS by default");
        List<DynamicNode> tests = new ArrayList<>();
        int i = 0;
        for (JsonNode c : root.get("cases")) {
            String text = c.get("text").asText();
            assertEquals(c.get("text_utf8_hex").asText(), hex(text), "JSON text decoding");
            int[] idsDefault = ints(c.get("ids_default"));
            int[] idsPlain = ints(c.get("ids_no_bos_no_special"));
            List<String> pieces = new ArrayList<>();
            c.get("pieces_no_bos_no_special").forEach(p -> pieces.add(p.asText()));
            String name = "#" + i++ + " " + text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t");
            tests.add(DynamicContainer.dynamicContainer(name, Stream.of(
                    DynamicTest.dynamicTest("default (BOS, special tokens parsed)",
                            () -> assertArrayEquals(idsDefault, t.encode(text, t.addBosByDefault(), true))),
                    DynamicTest.dynamicTest("--no-bos --no-parse-special",
                            () -> assertArrayEquals(idsPlain, t.encode(text, false, false))),
                    DynamicTest.dynamicTest("pieces", () -> {
                        assertEquals(pieces.size(), idsPlain.length);
                        for (int k = 0; k < idsPlain.length; k++) assertEquals(pieces.get(k), t.tokenText(idsPlain[k]), "piece " + k);
                    }),
                    DynamicTest.dynamicTest("decode", () -> {
                        // without BOS the dummy prefix space is dropped again: exactly the text
                        assertEquals(text, t.decode(idsPlain));
                        String spaced = text.isEmpty() ? "" : " " + text;
                        assertArrayEquals(spaced.getBytes(StandardCharsets.UTF_8), concatPieces(t, idsPlain));
                        if (!text.contains("<s>") && !text.contains("</s>")) {
                            // after BOS llama.cpp keeps the dummy space (with or without remove_special)
                            assertEquals(spaced, t.decode(idsDefault));
                            assertEquals(spaced, t.decode(idsDefault, true, false));
                        }
                    }))));
        }
        assertEquals(14, i, "cases in stories260K_tokenization.json");
        return tests.stream();
    }

    static int[] ints(JsonNode arr) {
        int[] r = new int[arr.size()];
        for (int i = 0; i < r.length; i++) r[i] = arr.get(i).asInt();
        return r;
    }

    // ---- llama.cpp's test vectors ---------------------------------------------------------------------------------

    record Vectors(List<String> inputs, List<int[]> outputs) {
    }

    /** The format read by llama.cpp's test-tokenizer-0. */
    static Vectors readVectors(Path inp, Path out) throws IOException {
        String raw = Files.readString(inp, StandardCharsets.UTF_8);
        String sep = "\n__ggml_vocab_test__\n";
        List<String> inputs = new ArrayList<>();
        int pos = 0;
        while (pos < raw.length()) {
            int next = raw.indexOf(sep, pos);
            if (next < 0) {
                inputs.add(raw.substring(pos));
                break;
            }
            inputs.add(raw.substring(pos, next));
            pos = next + sep.length();
        }
        List<int[]> outputs = new ArrayList<>();
        for (String line : Files.readAllLines(out, StandardCharsets.UTF_8)) {
            String s = line.strip();
            outputs.add(s.isEmpty() ? new int[0] : Arrays.stream(s.split("\\s+")).mapToInt(Integer::parseInt).toArray());
        }
        assertEquals(inputs.size(), outputs.size(), inp + ": inputs vs outputs");
        return new Vectors(inputs, outputs);
    }

    /** llama.cpp's clean-up of spaces, written independently (regexes) for checking decode(). */
    static String cleanedUp(String s) {
        s = s.replaceAll(" (?=[?!.,])", "");
        s = s.replace(" ' ", "'");
        return s.replaceAll(" '(?=s|m|re|ve)", "'");
    }

    static final List<String> EXPECTED_VOCABS = List.of("llama-spm", "phi-3", "gpt-2", "starcoder", "deepseek-coder", "falcon");

    @TestFactory
    Stream<DynamicNode> llamaCppVocabVectors() throws IOException {
        Path dir = tokenizerDir();
        List<DynamicNode> containers = new ArrayList<>();
        List<String> found = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path inp : files.filter(p -> p.getFileName().toString().endsWith(".gguf.inp")).sorted().toList()) {
                String base = inp.getFileName().toString().replace(".inp", "");
                Path gguf = dir.resolve(base);
                if (!Files.exists(gguf)) continue; // vectors without their vocabulary (see the README)
                String vocab = base.replace("ggml-vocab-", "").replace(".gguf", "");
                found.add(vocab);
                containers.add(vectorTests(vocab, load(gguf), readVectors(inp, dir.resolve(base + ".out"))));
            }
        }
        assertEquals(EXPECTED_VOCABS.stream().sorted().toList(), found.stream().sorted().toList(), "vocabularies with vectors");
        return containers.stream();
    }

    /** llama-2-tiny-random.gguf carries the same 32000-token LLaMA vocabulary as ggml-vocab-llama-spm.gguf. */
    @TestFactory
    Stream<DynamicNode> llama2TinyRandomOnLlamaSpmVectors() throws IOException {
        Tokenizer tiny = load(SharedData.models().resolve("llama-2-tiny-random.gguf"));
        Tokenizer spm = load(tokenizerDir().resolve("ggml-vocab-llama-spm.gguf"));
        assertEquals(spm.vocabSize(), tiny.vocabSize());
        for (int id = 0; id < spm.vocabSize(); id++) {
            assertEquals(spm.tokenText(id), tiny.tokenText(id));
            assertEquals(spm.score(id), tiny.score(id));
        }
        Path dir = tokenizerDir();
        return Stream.of(vectorTests("llama-2-tiny-random", tiny,
                readVectors(dir.resolve("ggml-vocab-llama-spm.gguf.inp"), dir.resolve("ggml-vocab-llama-spm.gguf.out"))));
    }

    static DynamicContainer vectorTests(String vocab, Tokenizer t, Vectors v) {
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < v.inputs.size(); i++) {
            String text = v.inputs.get(i);
            int[] expected = v.outputs.get(i);
            String shown = text.length() > 40 ? text.substring(0, 40) + "..." : text;
            tests.add(DynamicTest.dynamicTest("#" + i + " '" + shown.replace("\n", "\\n").replace("\t", "\\t") + "'", () -> {
                int[] actual = t.encode(text, false, false);
                assertArrayEquals(expected, actual, () -> vocab + " '" + text + "': expected " + Arrays.toString(expected)
                        + " got " + Arrays.toString(actual));
                if (t.kind() == Tokenizer.Kind.SPM) {
                    // the dummy prefix space is added by encode and dropped by decode (first piece only)
                    assertEquals(text, t.decode(actual));
                } else {
                    assertArrayEquals(text.getBytes(StandardCharsets.UTF_8), concatPieces(t, actual));
                    String preName = t.preTokenizer();
                    boolean cleans = !preName.equals("deepseek-coder");
                    assertEquals(cleans ? cleanedUp(text) : text, t.decode(actual));
                }
            }));
        }
        return DynamicContainer.dynamicContainer(vocab + " (" + v.inputs.size() + " vectors)", tests.stream());
    }

    @Test
    void vocabularyFacts() {
        Path dir = tokenizerDir();
        Tokenizer gpt2 = load(dir.resolve("ggml-vocab-gpt-2.gguf"));
        assertEquals(Tokenizer.Kind.BPE, gpt2.kind());
        assertEquals("gpt-2", gpt2.preTokenizer());
        assertEquals(50257, gpt2.vocabSize());
        assertEquals(50256, gpt2.bos());
        assertEquals(50256, gpt2.eos());
        assertEquals(50256, gpt2.eot());
        assertEquals(false, gpt2.addBosByDefault());
        assertArrayEquals(new int[] {50256}, gpt2.endOfGenerationIds());
        assertEquals(-1, gpt2.unk());

        Tokenizer phi3 = load(dir.resolve("ggml-vocab-phi-3.gguf"));
        assertEquals(32000, phi3.eos());
        assertTrue(phi3.isEndOfGeneration(phi3.tokenId("<|end|>")));
        assertTrue(phi3.isEndOfGeneration(phi3.tokenId("<|endoftext|>")));
        assertTrue(phi3.isEndOfGeneration(phi3.tokenId("</s>")));
        assertTrue(!phi3.isEndOfGeneration(phi3.tokenId("<|assistant|>")));
        // the chat markers are control tokens: parsed only when asked
        int user = phi3.tokenId("<|user|>");
        int end = phi3.tokenId("<|end|>");
        int[] parsed = phi3.encode("<|user|>\nHi<|end|>", false, true);
        assertEquals(user, parsed[0]);
        assertEquals(end, parsed[parsed.length - 1]);
        int[] plain = phi3.encode("<|user|>\nHi<|end|>", false, false);
        assertTrue(Arrays.stream(plain).noneMatch(id -> id == user || id == end));
        // phi-3: whitespace after a special token is stripped (RSTRIP), so "\n" after <|user|> disappears
        assertArrayEquals(phi3.encode("<|user|>Hi<|end|>", false, true), parsed);

        Tokenizer stories = load(SharedData.models().resolve("stories260K.gguf"));
        assertEquals(512, stories.vocabSize());
        assertEquals(1, stories.bos());
        assertEquals(2, stories.eos());
        assertEquals(0, stories.unk());
        assertArrayEquals(new int[] {2}, stories.endOfGenerationIds());
        assertTrue(stories.isControl(1) && stories.isSpecial(1) && !stories.isSpecial(300));
        assertTrue(stories.isByte(stories.tokenId("<0x0A>")));
        assertArrayEquals(new byte[] {10}, stories.tokenBytes(stories.tokenId("<0x0A>")));
        assertArrayEquals("<s>".getBytes(StandardCharsets.UTF_8), stories.tokenBytes(1));
        assertArrayEquals(new byte[0], stories.tokenBytes(1, false));

        Tokenizer deepseek = load(dir.resolve("ggml-vocab-deepseek-coder.gguf"));
        assertEquals(32013, deepseek.bos());
        assertEquals(32014, deepseek.eos());
        assertTrue(deepseek.addBosByDefault());
        assertEquals("deepseek-coder", deepseek.preTokenizer());
        // FIM markers are user-defined in this file; llama.cpp makes them control tokens
        assertTrue(deepseek.isControl(deepseek.tokenId("<｜fim▁begin｜>")));

        Tokenizer starcoder = load(dir.resolve("ggml-vocab-starcoder.gguf"));
        assertEquals(0, starcoder.eos());
        assertTrue(starcoder.isEndOfGeneration(0));
        assertTrue(starcoder.isEndOfGeneration(starcoder.tokenId("<fim_pad>")));
    }
}
