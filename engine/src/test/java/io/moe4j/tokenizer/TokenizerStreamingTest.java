package io.moe4j.tokenizer;

import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** StreamingDecoder: characters split over several tokens come out whole, once complete. */
class TokenizerStreamingTest {

    static Tokenizer stories() {
        return TokenizerGoldenTest.load(SharedData.models().resolve("stories260K.gguf"));
    }

    static Tokenizer gpt2() {
        return TokenizerGoldenTest.load(SharedData.golden().resolve("tokenizer/ggml-vocab-gpt-2.gguf"));
    }

    /** Feeds ids one by one; checks every chunk is whole characters; returns the chunks (flush last). */
    static List<String> stream(Tokenizer t, int[] ids) {
        StreamingDecoder d = new StreamingDecoder(t);
        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            String s = d.accept(id);
            assertWhole(s);
            chunks.add(s);
        }
        chunks.add(d.flush());
        assertFalse(d.hasPending());
        return chunks;
    }

    static void assertWhole(String s) {
        assertFalse(s.contains("\uFFFD"), () -> "replacement character in '" + s + "'");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                assertTrue(i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1)), "split surrogate pair");
                i++;
            } else {
                assertFalse(Character.isLowSurrogate(c), "lone low surrogate");
            }
        }
    }

    @Test
    void byteFallbackEmojiAndCjkOnSentencePiece() {
        Tokenizer t = stories();
        String text = "Emoji: 😀🚀👍🏽 and 🇺🇸, CJK: 你好，世界。안녕 café";
        int[] ids = t.encode(text, true, false);
        // this tiny vocabulary has no such characters: they are byte tokens, 3-4 per character
        int byteTokens = 0;
        for (int id : ids) if (t.isByte(id)) byteTokens++;
        assertTrue(byteTokens > 40, "byte tokens: " + byteTokens);
        List<String> chunks = stream(t, ids);
        // BOS renders as nothing; the dummy prefix space is part of the first piece, as in llama.cpp's output
        assertEquals(" " + text, String.join("", chunks));
        // the first byte of 😀 (F0) alone gives nothing, the fourth completes it
        StreamingDecoder d = new StreamingDecoder(t);
        assertEquals("", d.accept(t.tokenId("<0xF0>")));
        assertTrue(d.hasPending());
        assertEquals("", d.accept(t.tokenId("<0x9F>")));
        assertEquals("", d.accept(t.tokenId("<0x98>")));
        assertEquals("😀", d.accept(t.tokenId("<0x80>")));
        assertFalse(d.hasPending());
        // a piece that completes a character and starts text: both come out together
        assertEquals("", d.accept(t.tokenId("<0xC3>")));
        assertEquals("é", d.accept(t.tokenId("<0xA9>")));
    }

    @Test
    void byteLevelBpeSplitsCharactersAcrossTokens() {
        Tokenizer t = gpt2();
        String text = "你好，世界！🦙 llama 😶\u200d🌫️ ok";
        int[] ids = t.encode(text, false, false);
        List<String> chunks = stream(t, ids);
        assertEquals(text, String.join("", chunks));
        // at least one token ends in the middle of a character (empty chunk while the character is incomplete)
        assertTrue(chunks.subList(0, chunks.size() - 1).contains(""), chunks.toString());
        for (int id : ids) {
            byte[] b = t.tokenBytes(id);
            assertTrue(b.length > 0);
        }
    }

    @Test
    void invalidBytesBecomeReplacementCharacters() {
        Tokenizer t = stories();
        StreamingDecoder d = new StreamingDecoder(t);
        // a stray continuation byte can never become a character: replaced at once
        assertEquals("\uFFFD", d.accept(t.tokenId("<0x80>")));
        // a lead byte followed by ASCII: the lead is invalid, the ASCII is text
        assertEquals("", d.accept(t.tokenId("<0xE4>")));
        assertEquals("\uFFFDa", d.accept(t.tokenId("<0x61>")));
        // an unfinished character at the end of the stream
        assertEquals("", d.accept(t.tokenId("<0xF0>")));
        assertEquals("", d.accept(t.tokenId("<0x9F>")));
        assertEquals("\uFFFD", d.flush());
        assertFalse(d.hasPending());
        // overlong / surrogate starts are rejected right away (E0 80, ED A0)
        assertEquals("\uFFFD\uFFFD", d.accept(t.tokenId("<0xE0>")) + d.accept(t.tokenId("<0x80>")));
        assertEquals("", d.accept(t.tokenId("<0xED>")));
        assertTrue(d.accept(t.tokenId("<0xA0>")).startsWith("\uFFFD"));
    }

    @Test
    void controlTokensRenderOnlyWhenAsked() {
        Tokenizer t = stories();
        StreamingDecoder plain = new StreamingDecoder(t);
        assertEquals("", plain.accept(t.bos()));
        assertEquals("", plain.accept(t.eos()));
        StreamingDecoder special = new StreamingDecoder(t, true);
        assertEquals("<s>", special.accept(t.bos()));
        assertEquals("</s>", special.accept(t.eos()));
    }

    @Test
    void completePrefixRules() {
        byte[] emoji = "😀".getBytes(StandardCharsets.UTF_8);
        for (int k = 1; k < 4; k++) assertEquals(0, StreamingDecoder.completePrefix(emoji, k), "prefix of length " + k);
        assertEquals(4, StreamingDecoder.completePrefix(emoji, 4));
        byte[] mixed = "a€".getBytes(StandardCharsets.UTF_8); // 61 E2 82 AC
        assertEquals(1, StreamingDecoder.completePrefix(mixed, 2));
        assertEquals(1, StreamingDecoder.completePrefix(mixed, 3));
        assertEquals(4, StreamingDecoder.completePrefix(mixed, 4));
        assertEquals(2, StreamingDecoder.completePrefix(new byte[] {(byte) 0xF5, (byte) 0x80}, 2)); // F5 is never a lead
    }
}
