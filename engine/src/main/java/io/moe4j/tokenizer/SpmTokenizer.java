package io.moe4j.tokenizer;

import io.moe4j.gguf.ModelFormatException;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.PriorityQueue;

/**
 * SentencePiece-style tokenization as llama.cpp's {@code llm_tokenizer_spm}: spaces become U+2581, a dummy space is
 * put in front of the text (and after every special token) when {@code tokenizer.ggml.add_space_prefix} (default
 * true), then adjacent symbols are merged, always the pair whose merged text is the vocabulary token with the
 * highest score (leftmost on ties), until no pair is a token. Symbols that are not tokens fall back to byte tokens
 * {@code <0xXX>}. O(n log n) in the text length.
 */
final class SpmTokenizer extends Tokenizer {
    private static final char SPACE_MARK = '\u2581';
    /** Token for each byte value (byte fallback), -1 where none. */
    private final int[] byteTokens = new int[256];

    SpmTokenizer(Spec spec) {
        super(spec);
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.format("<0x%02X>", b));
            if (id == null && b < 0x80) id = ids.get(String.valueOf((char) b));
            byteTokens[b] = id == null ? -1 : id;
        }
    }

    @Override
    public Kind kind() {
        return Kind.SPM;
    }

    @Override
    public String preTokenizer() {
        return "default";
    }

    @Override
    byte[] normalPiece(String text) {
        return text.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override
    void encodeFragments(String text, List<Fragment> fragments, PreTokenizer.IntList out, boolean dummyPrefix) {
        boolean prevSpecial = true; // the dummy prefix goes in front of the first piece of text
        for (Fragment f : fragments) {
            if (f.token() >= 0) {
                out.add(f.token());
                prevSpecial = true;
                continue;
            }
            String piece = text.substring(f.start(), f.end());
            if (addSpacePrefix && dummyPrefix && prevSpecial) piece = " " + piece;
            tokenize(piece.replace(' ', SPACE_MARK), out);
            prevSpecial = false;
        }
    }

    private record Bigram(int left, int right, float score, int size) {
    }

    private static final java.util.Comparator<Bigram> ORDER = (a, b) -> {
        int c = Float.compare(b.score, a.score); // highest score first
        return c != 0 ? c : Integer.compare(a.left, b.left); // then leftmost
    };

    private void tokenize(String text, PreTokenizer.IntList out) {
        // one symbol per code point: start offset and length in chars, linked list of live symbols
        int n = text.codePointCount(0, text.length());
        if (n == 0) return;
        int[] start = new int[n];
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0, off = 0; i < n; i++) {
            int l = Character.charCount(text.codePointAt(off));
            start[i] = off;
            len[i] = l;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            off += l;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n), ORDER);
        for (int i = 1; i < n; i++) tryAddBigram(text, start, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            int l = b.left;
            int r = b.right;
            // skip pairs whose symbols have changed since they were queued
            if (len[l] == 0 || len[r] == 0 || len[l] + len[r] != b.size) continue;
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) tryAddBigram(text, start, len, prev[l], l, queue);
            if (next[l] >= 0) tryAddBigram(text, start, len, l, next[l], queue);
        }
        for (int i = 0; i != -1; i = next[i]) {
            String sym = text.substring(start[i], start[i] + len[i]);
            Integer id = ids.get(sym);
            if (id != null) {
                out.add(id);
                continue;
            }
            // Merged symbols are always tokens, so this is a single character that is not: its UTF-8 bytes as byte
            // tokens. (llama.cpp first looks the text up in the merges it made, which can only hold two or more
            // characters, so that lookup never succeeds for a single character.)
            for (byte b : sym.getBytes(StandardCharsets.UTF_8)) out.add(byteToken(b & 0xFF));
        }
    }

    private void tryAddBigram(String text, int[] start, int[] len, int left, int right, PriorityQueue<Bigram> queue) {
        int size = len[left] + len[right];
        Integer id = ids.get(text.substring(start[left], start[left] + size));
        if (id == null) return;
        queue.add(new Bigram(left, right, scores[id], size));
    }

    private int byteToken(int b) {
        int id = byteTokens[b];
        if (id >= 0) return id;
        if (unk >= 0) return unk;
        throw new ModelFormatException(source + ": no byte token <0x" + String.format("%02X", b) + "> and no unknown token");
    }
}
