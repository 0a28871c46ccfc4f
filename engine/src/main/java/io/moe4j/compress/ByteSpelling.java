package io.moe4j.compress;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Writes any byte sequence as a sequence of units the model can predict, such that the units' bytes, concatenated,
 * are exactly the input. A unit is a token id ({@code < vocab}), or an escaped byte ({@code vocab + b}) where the
 * vocabulary has no token that stands for byte {@code b} alone.
 *
 * <p>Valid UTF-8 is tokenized as text ({@link Tokenizer#encodeContinuation}) and the result checked: where a
 * tokenizer does not reproduce its input (a character it normalizes, an unknown character, a literal U+2581 in a
 * SentencePiece vocabulary) the text is retried word by word, then character by character, and what still does not
 * come back exactly is spelled byte by byte. Bytes that are not valid UTF-8 are spelled byte by byte: with byte
 * tokens ({@code <0xXX>}, SentencePiece byte fallback; the single-byte tokens of byte-level BPE), or escaped where
 * the vocabulary has none (byte-level BPE vocabularies often leave out C0, C1 and F5..FF, which UTF-8 never uses). Decoding needs none of this: it only concatenates the units' bytes.
 */
final class ByteSpelling {
    private final Tokenizer tokenizer;
    private final int vocab;
    private final byte[][] pieces;
    /** Token whose bytes are exactly this one byte, -1 where none. */
    private final int[] byteToken = new int[256];
    private final boolean escapes;

    ByteSpelling(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.vocab = tokenizer.vocabSize();
        this.pieces = new byte[vocab][];
        Arrays.fill(byteToken, -1);
        for (int id = 0; id < vocab; id++) {
            pieces[id] = tokenizer.tokenBytes(id, false);
            if (pieces[id].length == 1) {
                int b = pieces[id][0] & 0xFF;
                // the byte-fallback token is what the model saw for a stray byte; otherwise the first such token
                if (byteToken[b] < 0 || (tokenizer.isByte(id) && !tokenizer.isByte(byteToken[b]))) byteToken[b] = id;
            }
        }
        boolean missing = false;
        for (int t : byteToken) missing |= t < 0;
        this.escapes = missing;
    }

    int vocab() {
        return vocab;
    }

    /** Whether some byte has no token of its own, so that the escape symbol is needed. */
    boolean escapes() {
        return escapes;
    }

    /** The model input that stands for an escaped byte: the unknown token, or token 0. */
    int escapeInput() {
        return tokenizer.unk() >= 0 ? tokenizer.unk() : 0;
    }

    /** The token the model is fed for a unit. */
    int input(int unit) {
        return unit < vocab ? unit : escapeInput();
    }

    /** The bytes a unit stands for. */
    byte[] bytes(int unit) {
        return unit < vocab ? pieces[unit] : new byte[]{(byte) (unit - vocab)};
    }

    /** Appends the units of {@code data[off, off + len)} to {@code out}. */
    void spell(byte[] data, int off, int len, Units out) {
        int end = off + len;
        int runStart = off;
        int i = off;
        while (i < end) {
            int n = validCharLength(data, i, end);
            if (n > 0) {
                i += n;
                continue;
            }
            if (i > runStart) spellText(data, runStart, i, out);
            spellBytes(data, i, i + 1, out);
            runStart = ++i;
        }
        if (end > runStart) spellText(data, runStart, end, out);
    }

    /** Valid UTF-8 {@code data[from, to)}: tokenized whole, else word by word, else character by character. */
    private void spellText(byte[] data, int from, int to, Units out) {
        if (trySpell(data, from, to, out)) return;
        // words: a word starts at a space or line break that follows something else
        int wordStart = from;
        boolean split = false;
        for (int i = from + 1; i < to; i++) {
            byte b = data[i];
            if ((b == ' ' || b == '\n') && data[i - 1] != b) {
                split = true;
                spellWord(data, wordStart, i, out);
                wordStart = i;
            }
        }
        if (!split) {
            spellWord(data, from, to, out);
            return;
        }
        spellWord(data, wordStart, to, out);
    }

    private void spellWord(byte[] data, int from, int to, Units out) {
        if (trySpell(data, from, to, out)) return;
        for (int i = from; i < to; ) {
            int n = validCharLength(data, i, to);
            if (!trySpell(data, i, i + n, out)) spellBytes(data, i, i + n, out);
            i += n;
        }
    }

    /** Tokenizes {@code data[from, to)} (valid UTF-8) and appends the tokens if they spell it exactly. */
    private boolean trySpell(byte[] data, int from, int to, Units out) {
        String text = decode(data, from, to);
        int[] ids = tokenizer.encodeContinuation(text);
        int pos = from;
        for (int id : ids) {
            byte[] p = pieces[id];
            if (pos + p.length > to || !Arrays.equals(p, 0, p.length, data, pos, pos + p.length)) return false;
            pos += p.length;
        }
        if (pos != to) return false;
        for (int id : ids) out.add(id);
        return true;
    }

    private void spellBytes(byte[] data, int from, int to, Units out) {
        for (int i = from; i < to; i++) {
            int b = data[i] & 0xFF;
            out.add(byteToken[b] >= 0 ? byteToken[b] : vocab + b);
        }
    }

    private static String decode(byte[] data, int from, int to) {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        try {
            CharBuffer cb = d.decode(ByteBuffer.wrap(data, from, to - from));
            return cb.toString();
        } catch (CharacterCodingException e) {
            throw new IllegalStateException("not valid UTF-8, though checked", e);
        }
    }

    /** Length of the valid UTF-8 character at {@code i} (shortest form, no surrogates, at most U+10FFFF), 0 if none. */
    static int validCharLength(byte[] b, int i, int end) {
        int lead = b[i] & 0xFF;
        if (lead < 0x80) return 1;
        int n;
        int lo = 0x80, hi = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) n = 2;
        else if (lead >= 0xE0 && lead <= 0xEF) {
            n = 3;
            if (lead == 0xE0) lo = 0xA0;
            else if (lead == 0xED) hi = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            n = 4;
            if (lead == 0xF0) lo = 0x90;
            else if (lead == 0xF4) hi = 0x8F;
        } else return 0;
        if (i + n > end) return 0;
        for (int k = 1; k < n; k++) {
            int c = b[i + k] & 0xFF;
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return 0;
        }
        return n;
    }

    /** A growable list of units. */
    static final class Units {
        int[] a = new int[1024];
        int n;

        void add(int u) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            a[n++] = u;
        }
    }
}
