package io.moe4j.tokenizer;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.ModelFormatException;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** llama.cpp behaviours that the vectors do not cover, error handling, and cost on large inputs. */
class TokenizerBehaviourTest {

    static Tokenizer vocab(String name) {
        return TokenizerGoldenTest.load(SharedData.golden().resolve("tokenizer/ggml-vocab-" + name + ".gguf"));
    }

    static Tokenizer withMetadata(String vocab, Map<String, GgufValue> changes) {
        try (GgufFile f = GgufFile.open(SharedData.golden().resolve("tokenizer/ggml-vocab-" + vocab + ".gguf"))) {
            Map<String, GgufValue> kv = new LinkedHashMap<>(f.metadata().asMap());
            changes.forEach((k, v) -> {
                if (v == null) kv.remove(k);
                else kv.put(k, v);
            });
            return Tokenizer.fromGguf(new GgufMetadata(vocab + " (modified)", kv));
        }
    }

    @Test
    void cleanUpOfSpacesAsLlamaCpp() {
        byte[] b = "a ? b ! c . d , e ' f it 's I 'm we 're you 've he 'll it 'd 'x".getBytes(StandardCharsets.UTF_8);
        int n = Tokenizer.cleanUpSpaces(b, b.length);
        assertEquals("a? b! c. d, e'f it's I'm we're you've he 'll it 'd 'x", new String(b, 0, n, StandardCharsets.UTF_8));
        assertEquals(0, Tokenizer.cleanUpSpaces(new byte[0], 0));
        // gpt-2 decoding applies it, deepseek-coder does not
        Tokenizer gpt2 = vocab("gpt-2");
        assertEquals("Hi?", gpt2.decode(gpt2.encode("Hi ?", false, false)));
        Tokenizer ds = vocab("deepseek-coder");
        assertEquals("Hi ?", ds.decode(ds.encode("Hi ?", false, false)));
    }

    @Test
    void specialTokensParsedOnlyWhenAsked() {
        Tokenizer gpt2 = vocab("gpt-2");
        int eot = gpt2.tokenId("<|endoftext|>");
        assertArrayEquals(new int[] {gpt2.tokenId("Hi"), eot, gpt2.tokenId("ĠHi")}, gpt2.encode("Hi<|endoftext|> Hi", false, true));
        int[] plain = gpt2.encode("Hi<|endoftext|> Hi", false, false);
        assertTrue(Arrays.stream(plain).noneMatch(id -> id == eot));
        assertEquals("Hi<|endoftext|> Hi", gpt2.decode(plain));
        // rendering of control tokens in decode
        assertEquals("Hi Hi", gpt2.decode(gpt2.encode("Hi<|endoftext|> Hi", false, true)));
        assertEquals("Hi<|endoftext|> Hi", gpt2.decode(gpt2.encode("Hi<|endoftext|> Hi", false, true), false, true));
    }

    @Test
    void userDefinedTokensAreAlwaysWholeTokens() {
        // deepseek-coder marks 'õ', '÷', ... and the chat markers as user-defined: matched before BPE even without
        // special parsing, as llama.cpp does
        Tokenizer ds = vocab("deepseek-coder");
        int user = ds.tokenId("<|User|>");
        assertTrue(ds.isSpecial(user) && !ds.isControl(user));
        int[] ids = ds.encode("<|User|>hi", false, false);
        assertEquals(user, ids[0]);
        assertEquals("<|User|>hi", ds.decode(ids));
        assertEquals(ds.tokenId("õ"), ds.encode("õ", false, false)[0]);
    }

    @Test
    void spmDummyPrefixAfterSpecialTokensAndAddSpacePrefixFlag() {
        Tokenizer spm = vocab("llama-spm");
        // "<s>" parsed: the text after it gets its own dummy space, as in llama.cpp
        assertArrayEquals(new int[] {1, spm.tokenId("▁Hello")}, spm.encode("<s>Hello", false, true));
        assertArrayEquals(new int[] {1, spm.tokenId("▁Hello")}, spm.encode("Hello", true, true));
        Tokenizer noPrefix = withMetadata("llama-spm", Map.of("tokenizer.ggml.add_space_prefix", GgufValue.ofBool(false)));
        assertArrayEquals(new int[] {noPrefix.tokenId("Hello")}, noPrefix.encode("Hello", false, false));
        assertEquals("Hello", noPrefix.decode(noPrefix.encode("Hello", false, false)));
        assertEquals(" Hello", noPrefix.decode(noPrefix.encode(" Hello", false, false)));
        // add_bos_token = false changes the default only
        Tokenizer noBos = withMetadata("llama-spm", Map.of("tokenizer.ggml.add_bos_token", GgufValue.ofBool(false)));
        assertEquals(false, noBos.addBosByDefault());
        assertEquals(1, noBos.encode("x", true, false)[0]);
    }

    @Test
    void decodeLlamaCppDetokenizeSemantics() {
        Tokenizer spm = vocab("llama-spm");
        int[] hello = spm.encode("Hello world", false, false);
        assertEquals("Hello world", spm.decode(hello));
        int[] withBos = spm.encode("Hello world", true, false);
        assertEquals(" Hello world", spm.decode(withBos)); // BOS first: the space stays (llama_detokenize)
        assertEquals(" Hello world", spm.decode(withBos, true, false));
        assertEquals("<s> Hello world", spm.decode(withBos, false, true));
        int[] withEos = Arrays.copyOf(hello, hello.length + 1);
        withEos[hello.length] = spm.eos();
        assertEquals("Hello world</s>", spm.decode(withEos, false, true));
        assertEquals("Hello world", spm.decode(withEos, true, false));
        assertEquals("", spm.decode(new int[0]));
        assertThrows(IllegalArgumentException.class, () -> spm.decode(new int[] {-1}));
        assertThrows(IllegalArgumentException.class, () -> spm.decode(new int[] {spm.vocabSize()}));
        assertThrows(IllegalArgumentException.class, () -> spm.tokenText(spm.vocabSize()));
        assertEquals(-1, spm.tokenId("no such token"));
    }

    @Test
    void unsupportedAndBrokenMetadata() {
        SharedData.golden(); // skips here without ../shared, not inside assertThrows (where the skip would count as a failure)
        assertThrows(ModelFormatException.class, () -> withMetadata("gpt-2", Map.of("tokenizer.ggml.model", GgufValue.of("bert"))));
        assertThrows(ModelFormatException.class, () -> withMetadata("gpt-2", Map.of("tokenizer.ggml.model", GgufValue.of("t5"))));
        Map<String, GgufValue> noModel = new java.util.HashMap<>();
        noModel.put("tokenizer.ggml.model", null);
        assertThrows(ModelFormatException.class, () -> withMetadata("gpt-2", noModel));
        Map<String, GgufValue> noMerges = new java.util.HashMap<>();
        noMerges.put("tokenizer.ggml.merges", null);
        assertThrows(ModelFormatException.class, () -> withMetadata("gpt-2", noMerges));
        // an out-of-range special id is ignored (the default stays), as llama.cpp does
        Tokenizer t = withMetadata("llama-spm", Map.of("tokenizer.ggml.eos_token_id", GgufValue.ofU32(1_000_000)));
        assertEquals(2, t.eos());
        // missing pre-tokenizer: llama.cpp's "default" set
        Map<String, GgufValue> noPre = new java.util.HashMap<>();
        noPre.put("tokenizer.ggml.pre", null);
        assertEquals("default", withMetadata("gpt-2", noPre).preTokenizer());
    }

    @Test
    void gptOssStyleEndOfGeneration() {
        // a vocabulary with <|return|>, <|call|> and <|end|>: <|end|> ends a message, not the generation
        Tokenizer base = vocab("gpt-2");
        String[] tokens = new String[base.vocabSize()];
        for (int i = 0; i < tokens.length; i++) tokens[i] = base.tokenText(i);
        tokens[50250] = "<|return|>";
        tokens[50251] = "<|call|>";
        tokens[50252] = "<|end|>";
        tokens[50253] = "<|channel|>";
        tokens[50254] = "<|im_end|>";
        Tokenizer t = withMetadata("gpt-2", Map.of("tokenizer.ggml.tokens", GgufValue.ofArray(tokens)));
        assertTrue(t.isEndOfGeneration(50250));
        assertTrue(t.isEndOfGeneration(50251));
        assertTrue(!t.isEndOfGeneration(50252));
        assertTrue(t.isEndOfGeneration(50254));
        assertTrue(t.isEndOfGeneration(50256)); // <|endoftext|> (EOS)
        assertTrue(!t.isControl(50253) && t.isSpecial(50253)); // gpt-oss channel marker: user-defined, always rendered
        assertEquals("<|channel|>", t.decode(new int[] {50253}));
        assertEquals("", t.decode(new int[] {50254}));
    }

    @Test
    void loneSurrogatesAreEncodedAsQuestionMarks() {
        Tokenizer gpt2 = vocab("gpt-2");
        assertArrayEquals(gpt2.encode("a?b", false, false), gpt2.encode("a\uD800b", false, false));
    }

    /** Costs grow like n log n: big inputs, long words and long letter runs finish quickly (a quadratic step would not). */
    @Test
    void largeInputs() {
        String sentence = "Once upon a time, there was a little girl named Lily. She loved to play outside! 12345 — 你好 🚀\n";
        String big = sentence.repeat(4000); // ~400k characters
        for (Tokenizer t : new Tokenizer[] {vocab("llama-spm"), vocab("gpt-2"), vocab("falcon"), vocab("deepseek-coder"),
                TokenizerPreTokenizerTest.gpt2VocabWithPre("gpt-4o"), TokenizerPreTokenizerTest.gpt2VocabWithPre("qwen2")}) {
            long t0 = System.nanoTime();
            int[] ids = t.encode(big, false, true);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 30_000, t.preTokenizer() + ": " + ms + " ms");
            int[] one = t.encode(sentence, false, true);
            assertTrue(ids.length >= one.length * 3600L && ids.length <= one.length * 4400L,
                    t.preTokenizer() + ": " + ids.length + " tokens for 4000 x " + one.length);
            // one huge word and one huge run of letters
            String word = "ab".repeat(100_000);
            t0 = System.nanoTime();
            int[] w = t.encode(word, false, false);
            ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 30_000, t.preTokenizer() + " long word: " + ms + " ms");
            assertTrue(w.length > 0);
            String spaces = " ".repeat(100_000) + "x";
            assertTrue(t.encode(spaces, false, false).length > 0);
        }
    }
}
