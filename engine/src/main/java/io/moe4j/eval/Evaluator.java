package io.moe4j.eval;

import io.moe4j.generate.Sampler;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import io.moe4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How well a model predicts a text: the negative log-likelihood of each token given the tokens before it, over
 * windows of at most {@code ctx} tokens (each window a fresh context), and optionally how far a second model's
 * next-token distributions are from the first's (Kullback-Leibler divergence, top-1 agreement).
 *
 * <p>Two windowings:
 * <ul>
 *   <li>sliding (default): windows start every {@code stride} tokens and each token is scored exactly once, in the
 *       first window that holds it after that window's first token, so every token but the first few has at least
 *       {@code ctx - stride} tokens of context;</li>
 *   <li>llama-perplexity's ({@link Options#llamaCompatible}): non-overlapping windows of {@code ctx} tokens (the
 *       remainder dropped), each window's first token replaced by BOS, and only the tokens after its first half
 *       scored ({@code first = ctx / 2}); at least {@code 2 * ctx} tokens are required, as there.</li>
 * </ul>
 * Logits are computed with an F32 KV cache; the statistics in double precision.
 */
public final class Evaluator {

    /**
     * @param ctx    tokens per window
     * @param stride tokens a window advances by (sliding windowing only; at most {@code ctx - 1})
     * @param batch  tokens per forward pass
     */
    public record Options(int ctx, int stride, int batch, boolean llamaCompatible) {
        public Options {
            if (ctx < 2) throw new IllegalArgumentException("--ctx must be at least 2, got " + ctx);
            if (batch < 1) throw new IllegalArgumentException("--batch must be at least 1, got " + batch);
            if (!llamaCompatible && (stride < 1 || stride > ctx - 1)) {
                throw new IllegalArgumentException("--stride must be between 1 and ctx - 1 = " + (ctx - 1)
                        + " (so that every token is scored once), got " + stride);
            }
        }
    }

    /** One model's figures over the scored tokens: negative log-likelihood in nats, and the bytes those tokens spell. */
    public record Figures(long tokens, double nll, long bytes) {
        public double crossEntropy() {
            return nll / tokens;
        }

        public double bitsPerToken() {
            return crossEntropy() / Math.log(2);
        }

        public double perplexity() {
            return Math.exp(crossEntropy());
        }

        public double bitsPerByte() {
            return nll / Math.log(2) / bytes;
        }
    }

    /** Divergence of the compared model from the first one, over the scored positions. */
    public record Divergence(double meanKld, double kld99, double maxKld, double top1Agreement) {
    }

    /**
     * @param figures    the model's figures
     * @param compared   the compared model's figures, or null
     * @param divergence KL(model || compared) statistics, or null
     * @param nll        per token position, the model's negative log-likelihood of that token (NaN where not scored)
     * @param evaluated  tokens run through each model (windows overlap, so more than were scored)
     */
    public record Result(Figures figures, Figures compared, Divergence divergence, double[] nll, long evaluated,
                         double seconds) {
        public double tokensPerSecond() {
            return evaluated / Math.max(seconds, 1e-9);
        }
    }

    /** Told how many windows are done out of how many, and how many tokens went through the model so far. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (done, total, tokens) -> { };

        void update(int windowsDone, int windows, long tokensEvaluated);
    }

    private Evaluator() {
    }

    /**
     * The tokens of a text as evaluated: the model's BOS as it asks for one, control tokens in the text not parsed
     * (llama-perplexity's {@code common_tokenize(ctx, text, true)}); {@code llamaCompatible} also drops one final
     * line break, as llama.cpp's {@code -f} does when it reads the file.
     */
    public static int[] tokenize(Tokenizer tokenizer, String text, boolean llamaCompatible) {
        if (llamaCompatible && text.endsWith("\n")) text = text.substring(0, text.length() - 1);
        return tokenizer.encode(text, tokenizer.addBosByDefault(), false);
    }

    /** A scored position: the logits row {@code row} of window-local position predicts token {@code target}. */
    private record Window(int start, int[] tokens, int firstScoredRow) {
    }

    /**
     * Evaluates {@code tokens} with {@code model} and, when {@code compare} is not null, with {@code compare} too
     * (same vocabulary). {@code textBytes}: the length of the text in bytes, used for bits per byte when every token
     * after the first is scored; otherwise the bytes of the scored tokens count.
     */
    public static Result evaluate(Transformer model, Transformer compare, Tokenizer tokenizer, int[] tokens, long textBytes,
                                  Options o, Progress progress) {
        if (compare != null && compare.vocabSize() != model.vocabSize()) {
            throw new IllegalArgumentException("the models have different vocabularies (" + model.vocabSize()
                    + " and " + compare.vocabSize() + " tokens)");
        }
        List<Window> windows = o.llamaCompatible() ? llamaWindows(tokenizer, tokens, o.ctx()) : slidingWindows(tokens, o);
        long t0 = System.nanoTime();
        int vocab = model.vocabSize();
        double[] nll = new double[tokens.length];
        Arrays.fill(nll, Double.NaN);
        Stats a = new Stats(), b = compare != null ? new Stats() : null;
        DivergenceStats d = compare != null ? new DivergenceStats() : null;
        double[] la = new double[vocab], lb = new double[vocab];
        long evaluated = 0;
        long scoredBytes = 0;
        for (int w = 0; w < windows.size(); w++) {
            Window win = windows.get(w);
            KvCache ca = new KvCache(model.config(), win.tokens.length, KvType.F32);
            KvCache cb = compare != null ? new KvCache(compare.config(), win.tokens.length, KvType.F32) : null;
            try {
            // the last token predicts nothing inside the window: it is not run
            int run = win.tokens.length - 1;
            for (int from = 0; from < run; from += o.batch()) {
                int n = Math.min(o.batch(), run - from);
                int[] part = Arrays.copyOfRange(win.tokens, from, from + n);
                float[] ra = model.forward(part, n, ca, true, null);
                float[] rb = compare != null ? compare.forward(part, n, cb, true, null) : null;
                evaluated += n;
                for (int r = Math.max(0, win.firstScoredRow - from); r < n; r++) {
                    int row = from + r;
                    int pos = win.start + row + 1;
                    int target = tokens[pos];
                    double na = logSoftmax(ra, r * vocab, vocab, la, target);
                    nll[pos] = na;
                    a.add(na);
                    scoredBytes += tokenizer.tokenBytes(target, false).length;
                    if (compare != null) {
                        double nb = logSoftmax(rb, r * vocab, vocab, lb, target);
                        b.add(nb);
                        d.add(la, lb, Sampler.argmax(ra, r * vocab, vocab) == Sampler.argmax(rb, r * vocab, vocab));
                    }
                }
            }
            } finally {
                // The window's KV pages go back to the pool at once, not when the collector finds the caches.
                ca.close();
                if (cb != null) cb.close();
            }
            progress.update(w + 1, windows.size(), evaluated);
        }
        if (a.count == 0) throw new IllegalArgumentException("no token to score: the text has " + tokens.length + " tokens");
        boolean allScored = a.count == tokens.length - 1;
        long bytes = allScored && textBytes > 0 ? textBytes : scoredBytes;
        Figures fa = new Figures(a.count, a.sum, bytes);
        Figures fb = compare != null ? new Figures(b.count, b.sum, bytes) : null;
        return new Result(fa, fb, d != null ? d.result() : null, nll, evaluated, (System.nanoTime() - t0) / 1e9);
    }

    private static List<Window> slidingWindows(int[] tokens, Options o) {
        List<Window> windows = new ArrayList<>();
        int scoredUpTo = 1; // the next position to score
        for (int s = 0; scoredUpTo < tokens.length; s += o.stride()) {
            int e = Math.min(tokens.length, s + o.ctx());
            int first = Math.max(scoredUpTo, s + 1); // first target position scored in this window
            windows.add(new Window(s, Arrays.copyOfRange(tokens, s, e), first - 1 - s));
            scoredUpTo = e;
        }
        return windows;
    }

    private static List<Window> llamaWindows(Tokenizer tokenizer, int[] tokens, int ctx) {
        if (tokens.length < 2 * ctx) {
            throw new IllegalArgumentException("--llama-compatible needs at least 2 * ctx = " + 2 * ctx
                    + " tokens (as llama-perplexity), the text has " + tokens.length);
        }
        List<Window> windows = new ArrayList<>();
        for (int i = 0; i < tokens.length / ctx; i++) {
            int[] w = Arrays.copyOfRange(tokens, i * ctx, (i + 1) * ctx);
            if (tokenizer.addBosByDefault()) w[0] = tokenizer.bos();
            windows.add(new Window(i * ctx, w, ctx / 2));
        }
        return windows;
    }

    /** Writes log-softmax of the row into {@code out} and returns -log p(target). */
    private static double logSoftmax(float[] logits, int off, int vocab, double[] out, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp(logits[off + i] - max);
        double lse = max + Math.log(sum);
        for (int i = 0; i < vocab; i++) out[i] = logits[off + i] - lse;
        return -out[target];
    }

    private static final class Stats {
        long count;
        double sum;

        void add(double v) {
            count++;
            sum += v;
        }
    }

    private static final class DivergenceStats {
        double[] values = new double[1024];
        int n;
        long sameTop;

        void add(double[] logP, double[] logQ, boolean sameTop1) {
            double kl = 0;
            for (int i = 0; i < logP.length; i++) {
                double p = Math.exp(logP[i]);
                if (p > 0) kl += p * (logP[i] - logQ[i]);
            }
            if (n == values.length) values = Arrays.copyOf(values, n * 2);
            values[n++] = kl;
            if (sameTop1) sameTop++;
        }

        Divergence result() {
            double[] v = Arrays.copyOf(values, n);
            double sum = 0;
            for (double x : v) sum += x;
            Arrays.sort(v);
            return new Divergence(sum / n, percentile(v, 0.99), v[n - 1], (double) sameTop / n);
        }

        /** Linear interpolation between the two nearest ranks, as llama-perplexity computes its percentiles. */
        static double percentile(double[] sorted, double fraction) {
            double p = fraction * (sorted.length - 1);
            int i = (int) p;
            p -= i;
            return (1 - p) * sorted[i] + p * sorted[Math.min(i + 1, sorted.length - 1)];
        }
    }
}
