package io.moe4j.compress;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The range coder and the frequency tables on their own, including the escape symbol no test model needs. */
class RangeCoderTest {

    @Test
    void frequenciesCoverTheTotalWithEverySymbolPossible() {
        Random r = new Random(1);
        for (boolean escape : new boolean[]{false, true}) {
            Frequencies f = new Frequencies(1000, escape);
            for (int t = 0; t < 50; t++) {
                float[] logits = randomLogits(r, 1000, t % 5 == 0 ? 60 : 4);
                f.fromLogits(logits, 0);
                long sum = 0;
                for (int s = 0; s < f.symbols(); s++) {
                    assertTrue(f.freq(s) >= 1);
                    sum += f.freq(s);
                }
                assertEquals(Frequencies.TOTAL, sum);
                if (escape) assertEquals(Frequencies.ESCAPE_FREQ, f.freq(1000));
            }
        }
    }

    @Test
    void symbolsAndEscapedBytesDecodeToWhatWasCodedAtCloseToTheIdealLength() {
        Random r = new Random(2);
        int vocab = 300, n = 5000;
        Frequencies f = new Frequencies(vocab, true);
        float[][] rows = new float[n][];
        int[] symbols = new int[n], bytes = new int[n];
        RangeEncoder enc = new RangeEncoder();
        double ideal = 0;
        for (int i = 0; i < n; i++) {
            rows[i] = randomLogits(r, vocab, i % 7 == 0 ? 30 : 3);
            f.fromLogits(rows[i], 0);
            // mostly likely symbols, sometimes any, sometimes the escape
            int s = i % 50 == 0 ? vocab : i % 3 == 0 ? r.nextInt(vocab) : argmax(rows[i]);
            symbols[i] = s;
            f.encode(enc, s);
            ideal += -Math.log((double) f.freq(s) / Frequencies.TOTAL) / Math.log(2);
            if (s == vocab) {
                bytes[i] = r.nextInt(256);
                enc.encodeBits(bytes[i], 8);
                ideal += 8;
            }
        }
        byte[] coded = enc.finish();
        assertTrue(coded.length * 8 < ideal * 1.001 + 64, coded.length * 8 + " bits for an ideal " + ideal);
        RangeDecoder dec = new RangeDecoder(coded);
        for (int i = 0; i < n; i++) {
            f.fromLogits(rows[i], 0);
            assertEquals(symbols[i], f.decode(dec), "symbol " + i);
            if (symbols[i] == vocab) assertEquals(bytes[i], dec.decodeBits(8));
        }
        // the uniform table (first token without BOS) codes every symbol too
        f.uniform();
        RangeEncoder u = new RangeEncoder();
        for (int s = 0; s <= vocab; s++) f.encode(u, s);
        RangeDecoder ud = new RangeDecoder(u.finish());
        for (int s = 0; s <= vocab; s++) assertEquals(s, f.decode(ud));
    }

    @Test
    void nanLogitsAreRefused() {
        Frequencies f = new Frequencies(4, false);
        assertThrows(RuntimeException.class, () -> f.fromLogits(new float[]{0, Float.NaN, 1, 2}, 0));
    }

    static float[] randomLogits(Random r, int vocab, double spread) {
        float[] l = new float[vocab];
        for (int i = 0; i < vocab; i++) l[i] = (float) (r.nextGaussian() * spread);
        return l;
    }

    static int argmax(float[] l) {
        int b = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[b]) b = i;
        return b;
    }
}
