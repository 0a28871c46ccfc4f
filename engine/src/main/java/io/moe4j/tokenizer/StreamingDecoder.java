package io.moe4j.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns generated tokens into text one token at a time. A character whose UTF-8 bytes are spread over several
 * tokens (byte-fallback tokens, byte-level BPE pieces) is held back until it is complete, so every returned string
 * consists of whole characters. Bytes that can never form a character come out as U+FFFD right away.
 *
 * <p>Each token contributes its piece as llama.cpp's {@code llama_token_to_piece} with no leading-space removal,
 * which is what llama.cpp prints while generating. Not thread-safe; one instance per stream.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean renderSpecial;
    private byte[] pending = new byte[16];
    private int n;

    /** Control tokens (BOS, EOS, chat markers) render as nothing. */
    public StreamingDecoder(Tokenizer tokenizer) {
        this(tokenizer, false);
    }

    /** With {@code renderSpecial}, control tokens render as their text (e.g. {@code "<|im_end|>"}). */
    public StreamingDecoder(Tokenizer tokenizer, boolean renderSpecial) {
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
    }

    /** Adds one token; returns the text that is complete now (possibly empty). */
    public String accept(int id) {
        byte[] p = tokenizer.piece(id, renderSpecial);
        if (n + p.length > pending.length) pending = Arrays.copyOf(pending, Math.max(pending.length * 2, n + p.length));
        System.arraycopy(p, 0, pending, n, p.length);
        n += p.length;
        int complete = completePrefix(pending, n);
        if (complete == 0) return "";
        String s = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, n - complete);
        n -= complete;
        return s;
    }

    /** Ends the stream: returns what is left (an unfinished character as U+FFFD) and starts afresh. */
    public String flush() {
        String s = new String(pending, 0, n, StandardCharsets.UTF_8);
        n = 0;
        return s;
    }

    /** Whether bytes of an unfinished character are held back. */
    public boolean hasPending() {
        return n > 0;
    }

    /**
     * Length of the prefix that can be decoded now: everything except a trailing sequence that is a valid but
     * incomplete start of a UTF-8 character.
     */
    static int completePrefix(byte[] b, int len) {
        // the last lead byte within the final 3 bytes, if any
        for (int back = 1; back <= 3 && back <= len; back++) {
            int i = len - back;
            int lead = b[i] & 0xFF;
            if (lead < 0x80) return len; // ASCII: everything before and including it is complete
            if (lead < 0xC0) continue;  // continuation byte: keep looking for the lead
            int need = lead < 0xC2 ? 0 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : 0;
            if (need == 0 || back >= need) return len; // invalid lead, or the sequence is complete
            // incomplete: keep it only if what we have so far can still become a valid character
            for (int k = i + 1; k < len; k++) {
                int c = b[k] & 0xFF;
                int lo = 0x80;
                int hi = 0xBF;
                if (k == i + 1) {
                    if (lead == 0xE0) lo = 0xA0;
                    else if (lead == 0xED) hi = 0x9F;
                    else if (lead == 0xF0) lo = 0x90;
                    else if (lead == 0xF4) hi = 0x8F;
                }
                if (c < lo || c > hi) return len;
            }
            return i;
        }
        return len;
    }
}
