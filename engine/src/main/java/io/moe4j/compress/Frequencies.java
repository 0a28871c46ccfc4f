package io.moe4j.compress;

import io.moe4j.Moe4jException;

/**
 * The model's next-token distribution as integer frequencies for the range coder: every symbol gets at least 1,
 * the rest of {@link #TOTAL} is shared in proportion to softmax(logits), and what rounding down leaves over goes to
 * the most likely token. Computed in plain scalar double arithmetic with {@link StrictMath#exp}, so the same logits
 * give the same frequencies on every JVM and CPU: compressor and decompressor must agree on every single one.
 *
 * <p>Symbols are the vocabulary's tokens {@code 0 .. vocab-1}, plus, for vocabularies that cannot spell every byte,
 * one escape symbol {@code vocab} (followed by the byte as 8 raw bits) with the fixed share {@link #ESCAPE_FREQ}.
 */
final class Frequencies {
    static final int BITS = 24;
    static final long TOTAL = 1L << BITS;
    /** About 1/256: an escaped byte costs some 16 bits, every other token some 0.006 bits more. */
    static final int ESCAPE_FREQ = 1 << (BITS - 8);

    private final int vocab;
    private final boolean escape;
    private final int symbols;
    private final int[] freq;
    private final double[] exp;
    private final long[] cumulative;
    private boolean cumulativeValid;

    Frequencies(int vocab, boolean escape) {
        if (vocab + 1 > TOTAL / 4) throw new Moe4jException("a vocabulary of " + vocab + " tokens is too large for the compressor");
        this.vocab = vocab;
        this.escape = escape;
        this.symbols = vocab + (escape ? 1 : 0);
        this.freq = new int[symbols];
        this.exp = new double[vocab];
        this.cumulative = new long[symbols + 1];
    }

    int symbols() {
        return symbols;
    }

    /** Sets the frequencies from {@code logits[off, off + vocab)}. */
    void fromLogits(float[] logits, int off) {
        float max = Float.NEGATIVE_INFINITY;
        int argmax = -1;
        for (int i = 0; i < vocab; i++) {
            float l = logits[off + i];
            if (Float.isNaN(l)) throw new Moe4jException("the model produced a NaN logit (token " + i + ")");
            if (l > max) {
                max = l;
                argmax = i;
            }
        }
        if (max == Float.POSITIVE_INFINITY || argmax < 0) throw new Moe4jException("the model produced infinite logits");
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            exp[i] = StrictMath.exp((double) logits[off + i] - max);
            sum += exp[i];
        }
        long share = TOTAL - symbols - (escape ? ESCAPE_FREQ - 1 : 0);
        double scale = share / sum;
        long assigned = 0;
        for (int i = 0; i < vocab; i++) {
            int f = 1 + (int) Math.min(share, (long) (exp[i] * scale));
            freq[i] = f;
            assigned += f;
        }
        if (escape) {
            freq[vocab] = ESCAPE_FREQ;
            assigned += ESCAPE_FREQ;
        }
        // rounding down leaves a little over (or, from rounding in the sum, a hair too much): the top token absorbs it
        freq[argmax] += (int) (TOTAL - assigned);
        cumulativeValid = false;
    }

    /** The same share for every symbol: for a first token that has no context to predict it from. */
    void uniform() {
        long base = TOTAL / symbols;
        for (int i = 0; i < symbols; i++) freq[i] = (int) base;
        freq[0] += (int) (TOTAL - base * symbols);
        cumulativeValid = false;
    }

    int freq(int symbol) {
        return freq[symbol];
    }

    long start(int symbol) {
        prepareCumulative();
        return cumulative[symbol];
    }

    /** The symbol whose interval holds {@code target}. */
    int symbolAt(long target) {
        prepareCumulative();
        int lo = 0, hi = symbols - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (cumulative[mid] <= target) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    private void prepareCumulative() {
        if (cumulativeValid) return;
        long c = 0;
        for (int i = 0; i < symbols; i++) {
            cumulative[i] = c;
            c += freq[i];
        }
        cumulative[symbols] = c;
        cumulativeValid = true;
    }

    void encode(RangeEncoder enc, int symbol) {
        enc.encode(start(symbol), freq[symbol], TOTAL);
    }

    int decode(RangeDecoder dec) {
        int s = symbolAt(dec.target(TOTAL));
        dec.consume(cumulative[s], freq[s]);
        return s;
    }
}
