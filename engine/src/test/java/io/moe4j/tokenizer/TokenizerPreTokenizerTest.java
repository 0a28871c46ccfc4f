package io.moe4j.tokenizer;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pre-tokenizers without llama.cpp vectors here (llama3, qwen2, gpt-4o/o200k ...): splits checked by hand against
 * the published regexes (as llama.cpp runs them), agreement of llama.cpp's hand-written scanners with their regexes,
 * and the round trip decode(encode(s)) == s on a byte-level BPE vocabulary.
 */
class TokenizerPreTokenizerTest {

    static List<String> split(PreTokenizer.Type type, String text) {
        return PreTokenizer.of(type).split(text);
    }

    static final String SAMPLE = "Hello world, it's 12345 test!!\n\n  x";

    @Test
    void llama3SplitsByHand() {
        assertEquals(List.of("Hello", " world", ",", " it", "'s", " ", "123", "45", " test", "!!\n\n", " ", " x"),
                split(PreTokenizer.Type.LLAMA3, SAMPLE));
        // contractions are case-insensitive; a letter run takes one leading non-letter, non-digit character
        assertEquals(List.of("I", "'M", " you", "'RE", " \"", "quoted", "\""), split(PreTokenizer.Type.LLAMA3, "I'M you'RE \"quoted\""));
        assertEquals(List.of("\t", "\tx", "\r\n", "y", "  \n\n", "z"), split(PreTokenizer.Type.LLAMA3, "\t\tx\r\ny  \n\nz"));
        assertEquals(List.of("123", "456", "789", "0"), split(PreTokenizer.Type.LLAMA3, "1234567890"));
        assertEquals(List.of("Привет世界", "123", "abcDEF"), split(PreTokenizer.Type.LLAMA3, "Привет世界123abcDEF"));
        // non-ASCII whitespace is whitespace (U+00A0, U+3000)
        assertEquals(List.of("a", "\u00A0b", "\u3000", "\u3000c"), split(PreTokenizer.Type.LLAMA3, "a\u00A0b\u3000\u3000c"));
    }

    @Test
    void qwen2SplitsByHand() {
        // as llama3, but digits one by one
        assertEquals(List.of("Hello", " world", ",", " it", "'s", " ", "1", "2", "3", "4", "5", " test", "!!\n\n", " ", " x"),
                split(PreTokenizer.Type.QWEN2, SAMPLE));
        // one non-letter, non-digit character may lead a letter run ("，世界"); symbols and punctuation run together
        assertEquals(List.of("你好", "，世界", "！😀", " ", "3", ".", "1", "4"), split(PreTokenizer.Type.QWEN2, "你好，世界！😀 3.14"));
        assertEquals(List.of("don", "'t", " DON", "'T"), split(PreTokenizer.Type.QWEN2, "don't DON'T"));
    }

    @Test
    void gpt4oSplitsByHand() {
        // contractions stay with their word; digits in threes; case changes split words
        assertEquals(List.of("Hello", " world", ",", " it's", " ", "123", "45", " test", "!!\n\n", " ", " x"),
                split(PreTokenizer.Type.GPT4O, SAMPLE));
        assertEquals(List.of("Hello", "World", " HELLOworld", " hello", "WORLD", " I'M"),
                split(PreTokenizer.Type.GPT4O, "HelloWorld HELLOworld helloWORLD I'M"));
        assertEquals(List.of("foo", "/bar", "//\n", "baz"), split(PreTokenizer.Type.GPT4O, "foo/bar//\nbaz"));
        // llama.cpp runs this regex on collapsed text: a non-ASCII letter counts as upper- and lower-case at once
        assertEquals(List.of("ÄpfelÖl"), split(PreTokenizer.Type.GPT4O, "ÄpfelÖl"));
        // ... and combining marks are not letters there (unlike the published regex, which has \p{M} in the word)
        assertEquals(List.of("e", "\u0301te"), split(PreTokenizer.Type.GPT4O, "e\u0301te"));
        assertEquals(List.of("\t", "\tx"), split(PreTokenizer.Type.GPT4O, "\t\tx"));
    }

    @Test
    void gpt2AndFamiliesByHand() {
        assertEquals(List.of("Hello", " world", ",", " it", "'s", " 12345", " test", "!!", "\n\n ", " x"),
                split(PreTokenizer.Type.GPT2, SAMPLE));
        // starcoder: digits one by one first
        assertEquals(List.of("a", "1", "2", " ", "3"), split(PreTokenizer.Type.STARCODER, "a12 3"));
        // falcon: punctuation runs first, then gpt-2, then runs of 3 digits
        assertEquals(List.of("x", "!!", " ", "123", "456", "7"), split(PreTokenizer.Type.FALCON, "x!! 1234567"));
        // llama.cpp's "default" set: punctuation and $+<=>^~| runs, gpt-2, digit runs, then runs of 3 digits
        assertEquals(List.of("a", "+=", " ", "123", "45"), split(PreTokenizer.Type.DEFAULT, "a+= 12345"));
    }

    /** The hand-written scanners llama.cpp uses for the GPT-2 and LLaMA-3 regexes agree with the regexes. */
    @Test
    void customScannersMatchTheirRegexes() {
        List<String> texts = List.of(SAMPLE, "I'M you'RE \"quoted\" it's 'tis", "\t\tx\r\ny  \n\nz  ", "   ", " ", "a b  c   d",
                "нещо на Български", "Cửa Việt 1314151天～", "🚀 (normal) 😶\u200d🌫️ ✅", "3...3 ''''''```````\"\"\"\"......!!!!!!??????",
                "a\u00A0b\u3000\u3000c\u2028d", "x\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \ny", "\r\n\r\n", "'", "'s'", "ab'", "e\u0301");
        for (String re : List.of(PreTokenizer.GPT2_RE, PreTokenizer.LLAMA3_RE)) {
            PreTokenizer custom = PreTokenizer.ofRegexes(List.of(re), true);
            PreTokenizer regex = PreTokenizer.ofRegexes(List.of(re), false);
            for (String t : texts) assertEquals(regex.split(t), custom.split(t), () -> re + " on '" + t + "'");
        }
    }

    @Test
    void everyKnownPreTokenizerCompilesAndSplitsLosslessly() {
        for (PreTokenizer.Type type : PreTokenizer.Type.values()) {
            for (String s : TRICKY) assertEquals(s, String.join("", split(type, s)), () -> type + " on '" + s + "'");
        }
    }

    @Test
    void collapsedRegexRewriting() {
        assertEquals("[\u00D2A-Za-z]+", PreTokenizer.collapseRegex("\\p{L}+"));
        assertEquals("[^\\s\u00D2A-Za-z\u00D10-9]", PreTokenizer.collapseRegex("[^\\s\\p{L}\\p{N}]"));
        assertEquals("[\u00D2A-Za-z&&[^a-z]]*", PreTokenizer.collapseRegex("((?=[\\p{L}])([^a-z]))*"));
    }

    // ---- round trips on byte-level BPE vocabularies with these pre-tokenizers ------------------------------------

    /** The gpt-2 vocabulary (complete byte alphabet) under another pre-tokenizer name. */
    static Tokenizer gpt2VocabWithPre(String pre) {
        try (GgufFile f = GgufFile.open(SharedData.golden().resolve("tokenizer/ggml-vocab-gpt-2.gguf"))) {
            Map<String, GgufValue> kv = new LinkedHashMap<>(f.metadata().asMap());
            kv.put("tokenizer.ggml.pre", GgufValue.of(pre));
            return Tokenizer.fromGguf(new GgufMetadata("gpt-2 vocab as " + pre, kv));
        }
    }

    static final List<String> TRICKY = List.of("", " ", "  leading and trailing  ", "\n", "\r\n\r\n", "\t\tTabs\t",
            "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "I'M you'RE we'Ve it's", "1234567890 3.14159 -42",
            "🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 👍🏽 🇺🇸", "e\u0301 ÄpfelÖl naïve café",
            "नमस्ते दुनिया", "مرحبا بالعالم", "Привет世界123abcDEF", "a\u00A0b\u3000c\u2028d\u0085e",
            "\u0000\u0001\u001f\u007f", "<|endoftext|> is text here", "x".repeat(300), "    Hello\n    Hello",
            "3...3 ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure",
            "foo/bar//\nbaz", "𝓗𝓮𝓵𝓵𝓸 𐐀𐐁");

    @Test
    void roundTripsWithLlama3Qwen2Gpt4oPreTokenizers() {
        for (String pre : List.of("llama-bpe", "qwen2", "gpt-4o", "o200k", "tekken", "deepseek-llm", "deepseek-v3", "default",
                "poro-chat", "bailingmoe", "qwen35")) {
            Tokenizer t = gpt2VocabWithPre(pre);
            assertEquals(pre, t.preTokenizer());
            for (String s : TRICKY) {
                int[] ids = t.encode(s, false, false);
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                for (int id : ids) out.writeBytes(t.tokenBytes(id));
                assertArrayEquals(s.getBytes(StandardCharsets.UTF_8), out.toByteArray(), () -> pre + ": '" + s + "'");
                String expected = t.decode(ids);
                boolean cleans = pre.equals("llama-bpe") || pre.equals("default");
                assertEquals(cleans ? TokenizerGoldenTest.cleanedUp(s) : s, expected, () -> pre + ": '" + s + "'");
            }
        }
    }

    @Test
    void unknownPreTokenizerFallsBackToGpt2() {
        Tokenizer t = gpt2VocabWithPre("no-such-pre-tokenizer");
        assertEquals("gpt-2", t.preTokenizer());
        Tokenizer gpt2 = gpt2VocabWithPre("gpt-2");
        assertArrayEquals(gpt2.encode(SAMPLE, false, false), t.encode(SAMPLE, false, false));
    }

    @Test
    void llama3IgnoresMergesForWholeTokenWords() {
        Tokenizer t = gpt2VocabWithPre("llama-bpe");
        assertTrue(t.addBosByDefault(), "llama.cpp adds BOS for llama3 pre-tokenizers unless the file says otherwise");
        int[] ids = t.encode(" Hello", false, false);
        assertArrayEquals(new int[] {t.tokenId("ĠHello")}, ids);
    }
}
