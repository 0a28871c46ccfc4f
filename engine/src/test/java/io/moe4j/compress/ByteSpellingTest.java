package io.moe4j.compress;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Spelling bytes as units must give the bytes back exactly with every kind of vocabulary: SentencePiece with byte
 * fallback, byte-level BPE with four pre-tokenizers (three of which lack tokens for some bytes), and a
 * SentencePiece vocabulary without byte tokens: the bytes it cannot spell are escaped.
 */
class ByteSpellingTest {

    static Tokenizer vocab(String name, Map<String, GgufValue> changes) {
        try (GgufFile f = GgufFile.open(SharedData.golden().resolve("tokenizer/ggml-vocab-" + name + ".gguf"))) {
            Map<String, GgufValue> kv = new LinkedHashMap<>(f.metadata().asMap());
            kv.putAll(changes);
            return Tokenizer.fromGguf(new GgufMetadata(name, kv));
        }
    }

    static byte[] samples() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (String r : new String[]{"tinystories-like.txt", "unicode.txt"}) {
            try (InputStream in = ByteSpellingTest.class.getResourceAsStream(r)) {
                b.write(in.readAllBytes());
            }
        }
        b.write("<s> </s> <|endoftext|> <unk> \r\n\t\u0000 \u2581\u2581x".getBytes(StandardCharsets.UTF_8));
        byte[] random = new byte[3000];
        new Random(9).nextBytes(random);
        b.write(random);
        return b.toByteArray();
    }

    static void assertSpellsExactly(Tokenizer t, byte[] data) {
        ByteSpelling s = new ByteSpelling(t);
        ByteSpelling.Units units = new ByteSpelling.Units();
        s.spell(data, 0, data.length, units);
        ByteArrayOutputStream back = new ByteArrayOutputStream();
        for (int i = 0; i < units.n; i++) back.writeBytes(s.bytes(units.a[i]));
        assertArrayEquals(data, back.toByteArray(), t.toString());
        // text is spelled as text, not byte by byte
        assertTrue(units.n < data.length * 0.8, units.n + " units for " + data.length + " bytes");
    }

    /** The bytes no token stands for alone, in hex. */
    static String missing(Tokenizer t) {
        StringBuilder sb = new StringBuilder();
        boolean[] has = new boolean[256];
        for (int id = 0; id < t.vocabSize(); id++) {
            byte[] p = t.tokenBytes(id, false);
            if (p.length == 1) has[p[0] & 0xFF] = true;
        }
        for (int b = 0; b < 256; b++) if (!has[b]) sb.append(String.format("%02X ", b));
        return sb.toString();
    }

    @Test
    void everyVocabularySpellsAnyBytesExactly() throws IOException {
        byte[] data = samples();
        for (String name : new String[]{"llama-spm", "phi-3", "gpt-2", "starcoder", "deepseek-coder", "falcon"}) {
            Tokenizer t = vocab(name, Map.of());
            // starcoder, deepseek-coder and falcon leave out bytes that never occur in UTF-8 (C0, C1, F5..FF, ...)
            boolean complete = name.equals("llama-spm") || name.equals("phi-3") || name.equals("gpt-2");
            assertTrue(new ByteSpelling(t).escapes() != complete, name + " lacks tokens for: " + missing(t));
            assertSpellsExactly(t, data);
        }
    }

    @Test
    void aVocabularyWithoutByteTokensEscapesTheBytesItCannotSpell() throws IOException {
        // llama-spm with its <0xXX> tokens made ordinary tokens: they now stand for their text, not for a byte
        Tokenizer plain = vocab("llama-spm", Map.of());
        int[] types = new int[plain.vocabSize()];
        for (int id = 0; id < types.length; id++) {
            types[id] = plain.isByte(id) ? 1 : plain.isControl(id) ? 3 : id == plain.unk() ? 2 : 1;
        }
        Tokenizer t = vocab("llama-spm", Map.of("tokenizer.ggml.token_type", GgufValue.ofArrayI32(types)));
        ByteSpelling s = new ByteSpelling(t);
        assertTrue(s.escapes());
        byte[] data = samples();
        assertSpellsExactly(t, data);
        ByteSpelling.Units units = new ByteSpelling.Units();
        s.spell(data, 0, data.length, units);
        int escaped = 0;
        for (int i = 0; i < units.n; i++) if (units.a[i] >= t.vocabSize()) escaped++;
        assertTrue(escaped > 1000, escaped + " escaped bytes");
    }
}
