package io.moe4j.bench;

import io.moe4j.generate.Session;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.FeedForwardWeights;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.LoadReport;
import io.moe4j.kernels.MoeTimings;
import io.moe4j.kernels.MoeWeights;
import io.moe4j.kernels.Threads;
import io.moe4j.kernels.Weight;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.ModelStats;
import io.moe4j.model.ModelWeights;
import io.moe4j.model.Profile;
import io.moe4j.model.Transformer;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Measures one model: prefill of {@code pp} tokens, decode of {@code tg} tokens at an empty context and at a given
 * depth, against the weight bytes one decoded token reads. Tokens are random ids (speed does not depend on them).
 */
public final class ModelBench {

    /**
     * @param probeBytes size of the bandwidth probe run before and after each decode repetition (0: no probe)
     */
    public record Options(int pp, int tg, int depth, int reps, KvType kvType, long probeBytes) {
    }

    /** Figures of one model; rates are the median of the repetitions. */
    public record Result(String model, String arch, boolean moe, long totalParams, long activeParams, long weightBytesPerToken,
                         int ppTokens, double ppTokensPerS, double ppGflops,
                         int tgTokens, double tgTokensPerS, double tgBestTokensPerS,
                         int depth, double tgDepthTokensPerS, long kvBytesPerTokenAtDepth,
                         double routerFraction, double combineFraction, long loadNanos,
                         double bandwidthGBs, double rooflineFraction, long peakRssBytes, double ppPeakGflops) {
    }

    private ModelBench() {
    }

    /** A model file opened and loaded for measuring; closing it unmaps the file. */
    record Loaded(GgufFile file, Transformer tf, ModelStats stats, long loadNanos) implements AutoCloseable {
        ModelConfig cfg() {
            return tf.config();
        }

        @Override
        public void close() {
            file.close();
        }
    }

    /**
     * Opens {@code model} with its weights paged in (the first tokens must not measure the disk) and the kernels
     * compiled for batches and single tokens of {@code kvType} caches.
     */
    static Loaded load(Path model, KvType kvType, Consumer<String> log) {
        long t0 = System.nanoTime();
        GgufFile f = GgufFile.open(model);
        try {
            // Weights into memory first, so that the first tokens do not measure the disk; before the model is built,
            // which releases the file pages of the matrices it copies into an interleaved layout. Not with a layout
            // cache: the matrices then come from its file, and the model file's pages would only inflate the peak RSS
            // (16 GB instead of 8 for the 7.4 GB OLMoE-shape Q8_0 file). Whether the load will map them from a cache
            // must be known before it runs, so it is read from the configuration the CPU backend documents; the load
            // report below says what the load did.
            boolean layoutCache = layoutCacheConfigured();
            if (!layoutCache) f.mapping().load();
            Transformer tf = Transformer.of(f, Backend.cpu(), io.moe4j.model.LoadProgress.lines(model.getFileName().toString(), line -> {
                if (line.startsWith("loading")) log.accept(line); // the end is reported below, with the file's load
            }));
            LoadReport report = tf.weights().loadReport;
            // Nothing mapped from a cache nor prepared (a model of types without an interleaved layout, or a cache
            // that could not be opened, of which the backend warned): every matrix is a view of the file, paged in
            // now as it would have been without a cache; no file pages were released, so none is read twice.
            if (layoutCache && report.fromCache() == 0 && report.prepared() == 0) f.mapping().load();
            ModelStats stats = ModelStats.of(f, tf.config());
            long loadNanos = System.nanoTime() - t0;
            log.accept(String.format("loaded %s (%.2f GB) in %.1f s%s", model.getFileName(), f.fileSize() / 1e9, loadNanos / 1e9,
                    report.cacheFile() == null ? "" : String.format("; %d matrices mapped from the layout cache %s, %d prepared",
                            report.fromCache(), report.cacheFile(), report.prepared())));
            // Warm-up: compile the kernels for batches and single tokens.
            SplittableRandom rnd = new SplittableRandom(4321);
            int vocab = tf.vocabSize();
            Session warm = new Session(tf, new KvCache(tf.config(), 64, kvType, tf.backend().defaultKvPool()));
            warm.feed(randomTokens(rnd, vocab, 16));
            for (int i = 0; i < 32; i++) warm.feed(rnd.nextInt(vocab));
            warm.close(); // its KV pages go back to the pool for the runs
            return new Loaded(f, tf, stats, loadNanos);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    public static Result run(Path model, Options o, Consumer<String> log) {
        try (Loaded m = load(model, o.kvType(), log)) {
            Transformer tf = m.tf();
            ModelConfig cfg = tf.config();
            ModelStats stats = m.stats();
            long loadNanos = m.loadNanos();
            SplittableRandom rnd = new SplittableRandom(1234);
            int vocab = tf.vocabSize();

            double[] pp = new double[o.reps()], ppPeak = new double[o.reps()];
            double ppFlops = prefillFlops(cfg, stats, tf, o.pp());
            for (int r = 0; r < o.reps() && o.pp() > 0; r++) {
                // The FMA peak is measured around each run too: under load from other programs it drops, and a run
                // must not be credited against a peak measured while the machine was busier.
                double before = Machine.fmaPeakGflops(2);
                Session s = new Session(tf, new KvCache(cfg, o.pp() + 1, o.kvType(), tf.backend().defaultKvPool()));
                int[] tokens = randomTokens(rnd, vocab, o.pp());
                long a = System.nanoTime();
                s.feed(tokens);
                pp[r] = o.pp() / ((System.nanoTime() - a) * 1e-9);
                s.close();
                ppPeak[r] = Math.max(Math.max(before, Machine.fmaPeakGflops(2)), Machine.nominalFmaPeakGflops(Threads.count()));
                log.accept(String.format("  prefill %d tokens: %.2f tokens/s = %.1f GFLOP/s; FMA peak %.0f GFLOP/s -> %.1f%%", o.pp(), pp[r],
                        ppFlops * pp[r] / o.pp() / 1e9, ppPeak[r], 100 * ppFlops * pp[r] / o.pp() / 1e9 / ppPeak[r]));
            }

            long rss = Machine.peakRssBytes(); // weights touched, before the probe's buffer
            double[] tg = new double[o.reps()], fraction = new double[o.reps()], bandwidth = new double[o.reps()];
            long router = 0, combine = 0, forward = 0;
            try (Machine.BandwidthProbe probe = o.probeBytes() > 0 ? new Machine.BandwidthProbe(o.probeBytes()) : null) {
                for (int r = 0; r < o.reps() && o.tg() > 0; r++) {
                    double before = probe != null ? probe.measure(3) : 0;
                    Session s = new Session(tf, new KvCache(cfg, o.tg() + 1, o.kvType(), tf.backend().defaultKvPool()));
                    // Profile switches the backend's MoE timers (MoeTimings) on and resets them with its own.
                    Profile.reset();
                    Profile.enable(true);
                    long a = System.nanoTime();
                    for (int i = 0; i < o.tg(); i++) s.feed(rnd.nextInt(vocab));
                    long ns = System.nanoTime() - a;
                    s.close();
                    Profile.enable(false);
                    router += MoeTimings.routeNanos();
                    combine += MoeTimings.groupNanos() + MoeTimings.combineNanos();
                    forward += Profile.forwardNanos();
                    tg[r] = o.tg() / (ns * 1e-9);
                    double after = probe != null ? probe.measure(3) : 0;
                    // The larger of the two probes around the run: the conservative roofline for it.
                    bandwidth[r] = Math.max(before, after);
                    fraction[r] = bandwidth[r] > 0 ? tg[r] * stats.decodeBytesPerToken() / 1e9 / bandwidth[r] : 0;
                    log.accept(String.format("  decode %d tokens: %.2f tokens/s = %.1f GB/s; probe %.1f / %.1f GB/s -> %.1f%% of roofline",
                            o.tg(), tg[r], tg[r] * stats.decodeBytesPerToken() / 1e9, before, after, 100 * fraction[r]));
                }
            }

            double[] tgDepth = new double[o.reps()];
            // One cache, filled once (hundreds of MB: a new one per run would churn the heap and, with a big model,
            // push weight pages out of the page cache); each run decodes after the same depth positions.
            KvCache depthCache = o.tg() > 0 && o.depth() > 0 ? new KvCache(cfg, o.depth() + o.tg() + 1, o.kvType(), tf.backend().defaultKvPool()) : null;
            if (depthCache != null) depthCache.appendRandom(tf.backend(), o.depth(), 99);
            // Sliding-window layers give back what leaves their window, so such a cache cannot be cut back to the
            // depth: its runs follow one another, each a little deeper.
            boolean rewind = depthCache != null && depthCache.rewindable();
            for (int r = 0; r < o.reps() && depthCache != null; r++) {
                if (rewind) depthCache.truncate(o.depth());
                Session s = new Session(tf, depthCache);
                long a = System.nanoTime();
                for (int i = 0; i < o.tg(); i++) s.feed(rnd.nextInt(vocab));
                tgDepth[r] = o.tg() / ((System.nanoTime() - a) * 1e-9);
                log.accept(String.format("  decode %d tokens at depth %d: %.2f tokens/s", o.tg(), o.depth(), tgDepth[r]));
            }

            if (depthCache != null) depthCache.close();
            long kvBytes = cfg.blockCount() * cfg.kvRowsPerToken() * o.kvType().bytesFor(cfg.kvDim());
            double ppRate = median(pp);
            return new Result(model.getFileName().toString(), cfg.arch().name(), cfg.isMoe(), stats.totalParams(),
                    stats.activeParams(), stats.decodeBytesPerToken(), o.pp(), ppRate,
                    ppRate > 0 ? ppFlops / (o.pp() / ppRate) / 1e9 : 0, o.tg(), median(tg),
                    Arrays.stream(tg).max().orElse(0), o.depth(), median(tgDepth), kvBytes * o.depth(),
                    forward > 0 ? (double) router / forward : 0, forward > 0 ? (double) combine / forward : 0, loadNanos,
                    median(bandwidth), median(fraction), rss, median(ppPeak));
        }
    }

    /**
     * Useful floating-point operations of a prefill of {@code n} tokens: 2 per multiply-add of every matrix product
     * a token needs (attention projections, router, shared and k routed experts; the output head for the last token
     * only, as the prefill computes only its logits) plus the attention itself (q·k and p·v over the causal context).
     */
    static double prefillFlops(ModelConfig cfg, ModelStats stats, Transformer tf, int n) {
        ModelWeights w = tf.weights();
        double perToken = 0;
        for (ModelWeights.Layer l : w.layers) {
            for (Weight m : l.attentionMatrices()) perToken += macs(m);
            if (l.dense() != null) perToken += macs(l.dense());
            MoeWeights moe = l.moe();
            if (moe != null) {
                perToken += macs(moe.router()) + macs(moe.experts()) * cfg.expertUsedCount() / cfg.expertCount();
                if (moe.shared() != null) perToken += macs(moe.shared());
            }
        }
        double attention = 0;
        for (int l = 0; l < cfg.blockCount(); l++) {
            // per visible position: q·k over a key row and p·v over a value row of every head
            double perPosition = 2.0 * cfg.headCount() * (cfg.headDim() + cfg.valueDim());
            for (int p = 0; p < n; p++) attention += perPosition * (p - cfg.attentionStart(l, p) + 1);
        }
        return 2.0 * perToken * n + 2.0 * macs(w.output) + attention;
    }

    private static double macs(Weight m) {
        return (double) m.rows() * m.cols();
    }

    private static double macs(FeedForwardWeights f) {
        return macs(f.gate()) + macs(f.up()) + macs(f.down());
    }

    /**
     * Whether the CPU backend's loads will map the interleaved matrices from a layout cache: a folder is configured
     * ({@code -Dmoe4j.layoutCache} or {@code MOE4J_LAYOUT_CACHE}, see {@link Backend#cpu(Path)}) and the matrices are
     * interleaved at all (not with {@code -Dmoe4j.interleave=false}, which keeps them in the file mapping).
     */
    static boolean layoutCacheConfigured() {
        if ("false".equals(System.getProperty("moe4j.interleave"))) return false;
        String dir = System.getProperty("moe4j.layoutCache");
        if (dir == null || dir.isBlank()) dir = System.getenv("MOE4J_LAYOUT_CACHE");
        return dir != null && !dir.isBlank();
    }

    static int[] randomTokens(SplittableRandom r, int vocab, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(vocab);
        return t;
    }

    static double median(double[] v) {
        double[] s = Arrays.stream(v).filter(x -> x > 0).sorted().toArray();
        if (s.length == 0) return 0;
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** The flat key/value view of a result, as the JSON output writes it. */
    static Map<String, Object> flat(Result r, int threads, double fmaPeak, double nominalPeak) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", r.model());
        m.put("arch", r.arch());
        m.put("moe", r.moe());
        m.put("threads", threads);
        m.put("total_params", r.totalParams());
        m.put("active_params", r.activeParams());
        m.put("pp_tokens", r.ppTokens());
        m.put("pp_tokens_per_s", r.ppTokensPerS());
        m.put("pp_gflops", r.ppGflops());
        double peak = Math.max(r.ppPeakGflops(), Math.max(fmaPeak, nominalPeak));
        m.put("fma_peak_gflops", peak);
        m.put("fma_peak_measured_gflops", Math.max(r.ppPeakGflops(), fmaPeak));
        m.put("fma_peak_nominal_gflops", nominalPeak);
        m.put("pp_peak_fraction", r.ppGflops() / peak);
        m.put("tg_tokens", r.tgTokens());
        m.put("tg_tokens_per_s", r.tgTokensPerS());
        m.put("tg_best_tokens_per_s", r.tgBestTokensPerS());
        m.put("tg_depth", r.depth());
        m.put("tg_depth_tokens_per_s", r.tgDepthTokensPerS());
        m.put("weight_bytes_per_token", r.weightBytesPerToken());
        m.put("achieved_gbs", r.tgTokensPerS() * r.weightBytesPerToken() / 1e9);
        m.put("read_bandwidth_gbs", r.bandwidthGBs());
        m.put("roofline_tokens_per_s", r.bandwidthGBs() * 1e9 / r.weightBytesPerToken());
        m.put("roofline_fraction", r.rooflineFraction());
        m.put("kv_bytes_per_token_at_depth", r.kvBytesPerTokenAtDepth());
        m.put("router_topk_combine_fraction", r.routerFraction() + r.combineFraction());
        m.put("peak_rss_bytes", r.peakRssBytes());
        return m;
    }
}
