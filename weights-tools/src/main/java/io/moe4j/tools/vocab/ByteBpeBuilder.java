package io.moe4j.tools.vocab;

import io.moe4j.Moe4jException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds a real byte-level BPE tokenizer (GPT-2 style, llama.cpp's {@code gpt2} model with the {@code gpt-2}
 * pre-tokenizer) of any size: the 256 byte tokens, merges learned from a small embedded English text (most frequent
 * pair first, ties broken by the pair's text, so the result is fixed), ChatML special tokens and, to reach the
 * requested size, unused placeholder tokens. Deterministic: the same size always gives the same vocabulary.
 */
public final class ByteBpeBuilder {
    /** GPT-2's pre-tokenizer regex (what llama.cpp's "gpt-2" pre-tokenizer applies). */
    static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    public static final String[] SPECIALS = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    public static final String CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'"
            + " + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static final int NORMAL = 1, CONTROL = 3, UNUSED = 5;

    private ByteBpeBuilder() {
    }

    /** A vocabulary of exactly {@code size} tokens (at least 256 + the special tokens). */
    public static Vocabulary build(int size) {
        int minimum = 256 + SPECIALS.length;
        if (size < minimum) throw new Moe4jException("a byte-level vocabulary needs at least " + minimum + " tokens, asked for " + size);
        List<String> tokens = new ArrayList<>(size);
        List<Integer> types = new ArrayList<>(size);
        char[] byteChar = byteToUnicode();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(byteChar[b]));
            types.add(NORMAL);
        }
        int room = size - minimum;
        List<String[]> merges = learnMerges(corpus(), room);
        Set<String> seen = new HashSet<>(tokens);
        List<String> mergeLines = new ArrayList<>();
        for (String[] m : merges) {
            String merged = m[0] + m[1];
            if (seen.add(merged)) {
                if (tokens.size() >= 256 + room) break;
                tokens.add(merged);
                types.add(NORMAL);
            }
            mergeLines.add(m[0] + " " + m[1]);
        }
        int firstSpecial = tokens.size();
        for (String s : SPECIALS) {
            tokens.add(s);
            types.add(CONTROL);
        }
        fill(tokens, types, seen, size, firstSpecial);
        return new Vocabulary("gpt2", "gpt-2", tokens.toArray(String[]::new), types.stream().mapToInt(Integer::intValue).toArray(),
                null, mergeLines.toArray(String[]::new), firstSpecial, firstSpecial, firstSpecial + 2, false, CHATML_TEMPLATE);
    }

    /**
     * Fills the vocabulary up to {@code size} with normal tokens that no merge produces but that decode to text:
     * concatenations of two (then three) learned tokens, so that a random model's output is readable.
     */
    private static void fill(List<String> tokens, List<Integer> types, Set<String> seen, int size, int normalCount) {
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < normalCount; i++) {
            String t = tokens.get(i);
            if (t.length() > 1 || Character.isLetter(t.charAt(0))) parts.add(t);
        }
        int n = parts.size();
        for (long k = 0; tokens.size() < size; k++) {
            String t = parts.get((int) (k % n)) + parts.get((int) (k / n % n));
            if (k >= (long) n * n) t += parts.get((int) (k / ((long) n * n) % n));
            if (k >= (long) n * n * n) t = "<|unused_" + k + "|>";
            if (seen.add(t)) {
                tokens.add(t);
                types.add(t.startsWith("<|unused_") ? UNUSED : NORMAL);
            }
        }
    }

    /** GPT-2's map from bytes to printable characters. */
    public static char[] byteToUnicode() {
        char[] map = new char[256];
        boolean[] direct = new boolean[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char) b : (char) (256 + n++);
        return map;
    }

    static String corpus() {
        try (InputStream in = ByteBpeBuilder.class.getResourceAsStream("corpus.txt")) {
            if (in == null) throw new IllegalStateException("corpus.txt resource is missing");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Up to {@code max} merges learned from {@code text}, most frequent pair first, until every word is one token. */
    static List<String[]> learnMerges(String text, int max) {
        char[] byteChar = byteToUnicode();
        Map<String, Integer> wordCounts = new LinkedHashMap<>();
        Matcher m = GPT2_SPLIT.matcher(text);
        while (m.find()) {
            byte[] bytes = m.group().getBytes(StandardCharsets.UTF_8);
            StringBuilder sb = new StringBuilder();
            for (byte b : bytes) sb.append(byteChar[b & 0xFF]);
            wordCounts.merge(sb.toString(), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        for (Map.Entry<String, Integer> e : wordCounts.entrySet()) {
            List<String> syms = new ArrayList<>();
            for (char c : e.getKey().toCharArray()) syms.add(String.valueOf(c));
            words.add(syms);
            counts.add(e.getValue());
        }
        List<String[]> merges = new ArrayList<>();
        while (merges.size() < max) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) pairs.merge(s.get(i) + " " + s.get(i + 1), counts.get(w), Integer::sum);
            }
            String best = null;
            int bestCount = 0;
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                int c = e.getValue();
                if (c > bestCount || (c == bestCount && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                    bestCount = c;
                }
            }
            if (best == null) break;
            int sp = best.indexOf(' ');
            String a = best.substring(0, sp), b = best.substring(sp + 1);
            merges.add(new String[]{a, b});
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(a) && s.get(i + 1).equals(b)) {
                        s.set(i, a + b);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return merges;
    }
}
