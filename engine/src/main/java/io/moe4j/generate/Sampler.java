package io.moe4j.generate;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/** Picks tokens from logits according to {@link SamplingOptions}; one instance per sequence (it owns the RNG). */
public final class Sampler {
    private final SamplingOptions o;
    private final SplittableRandom random;
    private Integer[] order = new Integer[0];

    public Sampler(SamplingOptions options) {
        this.o = options;
        this.random = new SplittableRandom(options.seed());
    }

    /**
     * Chooses the next token. {@code history} holds the sequence so far (prompt and generated tokens; penalties
     * look at its last {@code repeatLastN}). {@code logits} is modified.
     */
    public int sample(float[] logits, int[] history, int historyLength) {
        applyPenalties(logits, history, historyLength);
        if (o.greedy()) return argmax(logits);

        int n = logits.length;
        if (order.length != n) {
            order = new Integer[n];
        }
        for (int i = 0; i < n; i++) order[i] = i;
        // Sort by logit descending, lower id first on ties (stable sort keeps id order).
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = o.topK() > 0 ? Math.min(o.topK(), n) : n;

        double max = logits[order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp(logits[order[i]] - max);
            sum += p[i];
        }
        if (o.topP() < 1) {
            double cum = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cum += p[i] / sum;
                if (cum >= o.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
        }
        if (o.minP() > 0) {
            int cut = 1;
            while (cut < keep && p[cut] >= o.minP() * p[0]) cut++;
            keep = cut;
        }
        // Temperature on the survivors, then a draw.
        double total = 0;
        double[] q = new double[keep];
        for (int i = 0; i < keep; i++) {
            q[i] = Math.exp((logits[order[i]] - max) / o.temperature());
            total += q[i];
        }
        double r = random.nextDouble() * total;
        for (int i = 0; i < keep; i++) {
            r -= q[i];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }

    private void applyPenalties(float[] logits, int[] history, int length) {
        boolean repeat = o.repeatPenalty() != 1f, presence = o.presencePenalty() != 0f, freq = o.frequencyPenalty() != 0f;
        if (!(repeat || presence || freq) || o.repeatLastN() == 0 || length == 0) return;
        Map<Integer, Integer> counts = new HashMap<>();
        for (int i = Math.max(0, length - o.repeatLastN()); i < length; i++) counts.merge(history[i], 1, Integer::sum);
        for (Map.Entry<Integer, Integer> e : counts.entrySet()) {
            int id = e.getKey();
            if (id < 0 || id >= logits.length) continue;
            float l = logits[id];
            if (repeat) l = l > 0 ? l / o.repeatPenalty() : l * o.repeatPenalty();
            l -= e.getValue() * o.frequencyPenalty() + (e.getValue() > 0 ? o.presencePenalty() : 0f);
            logits[id] = l;
        }
    }

    public static int argmax(float[] logits) {
        return argmax(logits, 0, logits.length);
    }

    /** The first index (from 0) of the largest of {@code n} logits starting at {@code off}. */
    public static int argmax(float[] logits, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (logits[off + i] > logits[off + best]) best = i;
        return best;
    }
}
