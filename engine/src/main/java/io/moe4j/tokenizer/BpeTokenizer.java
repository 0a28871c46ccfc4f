package io.moe4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Byte-level BPE as llama.cpp's {@code llm_tokenizer_bpe}: the text is split into words by the pre-tokenizer, each
 * word's UTF-8 bytes are written in GPT-2's byte alphabet, then adjacent symbols are merged, always the pair with
 * the lowest merge rank (leftmost on ties), until no pair has a rank. O(n log n) in the text length.
 */
final class BpeTokenizer extends Tokenizer {
    private final PreTokenizer.Config config;
    private final PreTokenizer preTokenizer;
    /** "left right" (a merge line of tokenizer.ggml.merges) to its rank. */
    private final Map<String, Integer> ranks;

    BpeTokenizer(Spec spec, PreTokenizer.Config config, String[] merges) {
        super(spec);
        this.config = config;
        this.preTokenizer = PreTokenizer.of(config.type());
        this.ranks = new HashMap<>(merges.length * 2);
        for (int i = 0; i < merges.length; i++) {
            // llama.cpp splits at the first space after the first character; lines without one are unusable
            if (merges[i].indexOf(' ', 1) > 0) ranks.putIfAbsent(merges[i], i);
        }
    }

    @Override
    public Kind kind() {
        return Kind.BPE;
    }

    @Override
    public String preTokenizer() {
        return config.name();
    }

    /** llama.cpp's {@code llama_decode_text}: byte-level characters back to bytes. */
    @Override
    byte[] normalPiece(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        text.codePoints().forEach(cp -> {
            int b = ByteLevel.byteOf(cp);
            if (b >= 0) {
                out.write(b);
            } else {
                StringBuilder sb = new StringBuilder("[UNK_BYTE_0x");
                for (byte u : new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8)) sb.append(String.format("%02x", u & 0xFF));
                sb.append(text).append(']');
                out.writeBytes(sb.toString().getBytes(StandardCharsets.UTF_8));
            }
        });
        return out.toByteArray();
    }

    @Override
    void encodeFragments(String text, List<Fragment> fragments, PreTokenizer.IntList out, boolean dummyPrefix) {
        for (Fragment f : fragments) {
            if (f.token() >= 0) {
                out.add(f.token());
                continue;
            }
            for (String word : preTokenizer.split(text.substring(f.start(), f.end()))) {
                mergeWord(ByteLevel.encode(word), out);
            }
        }
    }

    private record Bigram(int left, int right, int rank, int size) {
    }

    private static final java.util.Comparator<Bigram> ORDER = (a, b) -> {
        int c = Integer.compare(a.rank, b.rank); // lowest rank first
        return c != 0 ? c : Integer.compare(a.left, b.left); // then leftmost
    };

    /** BPE over one word in byte-level characters (each char is one symbol: all are below U+0144). */
    private void mergeWord(String word, PreTokenizer.IntList out) {
        int n = word.length();
        if (n == 0) return;
        if (config.ignoreMerges()) {
            Integer id = ids.get(word);
            if (id != null) {
                out.add(id);
                return;
            }
        }
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            len[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n), ORDER);
        for (int i = 1; i < n; i++) tryAddBigram(word, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            int l = b.left;
            int r = b.right;
            // stale: one side was merged away or has grown since the pair was queued
            if (len[l] == 0 || len[r] == 0 || len[l] + len[r] != b.size) continue;
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) tryAddBigram(word, len, prev[l], l, queue);
            if (next[l] >= 0) tryAddBigram(word, len, l, next[l], queue);
        }
        for (int i = 0; i != -1; i = next[i]) {
            String sym = word.substring(i, i + len[i]);
            Integer id = ids.get(sym);
            if (id != null) {
                out.add(id);
                continue;
            }
            // not a token: llama.cpp tries each byte of the symbol's UTF-8 as a one-byte token and drops the rest
            for (byte u : sym.getBytes(StandardCharsets.UTF_8)) {
                if (u >= 0) {
                    Integer bid = ids.get(String.valueOf((char) u));
                    if (bid != null) out.add(bid);
                }
            }
        }
    }

    private void tryAddBigram(String word, int[] len, int left, int right, PriorityQueue<Bigram> queue) {
        // symbols are contiguous: the left one starts at its index, the right one right after it
        String key = word.substring(left, left + len[left]) + ' ' + word.substring(right, right + len[right]);
        Integer rank = ranks.get(key);
        if (rank == null) return;
        queue.add(new Bigram(left, right, rank, len[left] + len[right]));
    }
}
