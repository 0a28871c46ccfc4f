package io.moe4j.tools.vocab;

import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ByteBpeBuilderTest {

    private static Tokenizer tokenizer(Vocabulary v) {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        v.putMetadata(md);
        return Tokenizer.fromGguf(new GgufMetadata("test", md));
    }

    @Test
    void anySizeIsExactUniqueAndConsistent() {
        for (int size : new int[]{259, 512, 50304}) {
            Vocabulary v = ByteBpeBuilder.build(size);
            assertEquals(size, v.size());
            Set<String> unique = new HashSet<>(Arrays.asList(v.tokens()));
            assertEquals(size, unique.size(), "duplicate tokens");
            for (String m : v.merges()) {
                String[] p = m.split(" ");
                assertEquals(2, p.length, m);
                assertTrue(unique.contains(p[0]) && unique.contains(p[1]) && unique.contains(p[0] + p[1]), "merge " + m);
            }
            assertEquals("<|endoftext|>", v.tokens()[v.bos()]);
            assertEquals("<|im_end|>", v.tokens()[v.eot()]);
        }
        assertTrue(Arrays.equals(ByteBpeBuilder.build(512).tokens(), ByteBpeBuilder.build(512).tokens()), "deterministic");
    }

    @Test
    void tokenizesWithMergesAndRoundTrips() {
        Tokenizer t = tokenizer(ByteBpeBuilder.build(512));
        String text = "Once upon a time, there was a little girl named Lily. 123 ünïcödé 日本 🙂\n\tend";
        int[] ids = t.encode(text, false, false);
        assertEquals(text, t.decode(ids));
        String english = "Once upon a time, there was a little girl named Lily.";
        int n = t.encode(english, false, false).length;
        assertTrue(n < english.length() / 2, "merges used: " + n + " tokens for " + english.length() + " characters");
        int big = tokenizer(ByteBpeBuilder.build(4096)).encode(english, false, false).length;
        assertTrue(big <= english.length() / 4, "with 4096 tokens: " + big + " tokens for " + english.length() + " characters");
        int[] chat = t.encode("<|im_start|>user\nhi<|im_end|>", false, true);
        assertEquals(t.tokenId("<|im_start|>"), chat[0]);
        assertTrue(t.isEndOfGeneration(t.tokenId("<|im_end|>")));
    }

    @Test
    void fillerTokensDecodeToText() {
        Tokenizer t = tokenizer(ByteBpeBuilder.build(50304));
        String s = t.decode(new int[]{40000, 45000, 50303});
        assertTrue(!s.isBlank() && !s.contains("unused"), s);
    }
}
