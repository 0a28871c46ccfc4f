package io.moe4j.bench;

import io.moe4j.ByteSize;
import io.moe4j.generate.Session;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.Profile;
import io.moe4j.model.Transformer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Decode and prefill speed as the context grows ({@code moe4j bench --ctx-sweep}): at each depth the KV cache is
 * filled with random keys and values (evaluating a 128k-token prompt would take hours on a small machine, and
 * speed does not depend on the values), then tokens are decoded one at a time and a prompt chunk is evaluated on top
 * of it. Decode is set against a roofline that counts what a token reads: the active weights plus the keys and
 * values it attends to.
 */
final class ContextSweep {

    /** Figures at one depth; rates are medians of the repetitions. */
    record Row(int depth, double decodeTokensPerS, double prefillTokensPerS, long kvBytesHeld, double kvBytesPerToken,
               long kvBytesReadPerToken, double attentionShare, double bandwidthGBs, double rooflineTokensPerS,
               double rooflineFraction) {
    }

    record Options(int[] depths, int prefillTokens, int decodeTokens, int reps, KvType kvType, long probeBytes) {
    }

    private ContextSweep() {
    }

    static List<Row> run(Path model, Options o, Consumer<String> log) {
        try (ModelBench.Loaded m = ModelBench.load(model, o.kvType(), log)) {
            Transformer tf = m.tf();
            ModelConfig cfg = tf.config();
            long weightBytes = m.stats().decodeBytesPerToken();
            int vocab = tf.vocabSize(), maxDepth = java.util.Arrays.stream(o.depths()).max().orElse(0);
            int extra = o.reps() * (o.decodeTokens() + o.prefillTokens()) + 1;
            SplittableRandom rnd = new SplittableRandom(77);
            List<Row> rows = new ArrayList<>();
            // One cache grown from depth to depth: each fill adds only the positions since the previous depth.
            try (KvCache cache = new KvCache(cfg, maxDepth + extra, o.kvType(), tf.backend().defaultKvPool());
                 Machine.BandwidthProbe probe = o.probeBytes() > 0 ? new Machine.BandwidthProbe(o.probeBytes()) : null) {
                for (int depth : o.depths()) {
                    long f0 = System.nanoTime();
                    if (cache.length() > depth) cache.close(); // depths not ascending: start over
                    cache.appendRandom(tf.backend(), depth - cache.length(), depth);
                    log.accept(String.format("  depth %d: cache filled in %.1f s (%s of KV pages)", depth, (System.nanoTime() - f0) / 1e9,
                            ByteSize.format(cache.bytes())));
                    long held = cache.bytes();
                    long readPerToken = kvBytesRead(cfg, o.kvType(), depth);
                    // A cache whose sliding-window layers dropped positions cannot be cut back to the depth: its runs
                    // follow one another, each a few tokens deeper than the one before (reported below).
                    boolean rewind = cache.rewindable();
                    double[] tg = new double[o.reps()], pp = new double[o.reps()], bw = new double[o.reps()], att = new double[o.reps()];
                    for (int r = 0; r < o.reps(); r++) {
                        if (rewind) cache.truncate(depth);
                        double before = probe != null ? probe.measure(3) : 0;
                        Session s = new Session(tf, cache);
                        Profile.reset();
                        Profile.enable(true);
                        long a = System.nanoTime();
                        for (int i = 0; i < o.decodeTokens(); i++) s.feed(rnd.nextInt(vocab));
                        long ns = System.nanoTime() - a;
                        Profile.enable(false);
                        tg[r] = o.decodeTokens() / (ns * 1e-9);
                        att[r] = Profile.forwardNanos() > 0 ? (double) Profile.attentionNanos() / Profile.forwardNanos() : 0;
                        double after = probe != null ? probe.measure(3) : 0;
                        bw[r] = Math.max(before, after);
                        if (o.prefillTokens() > 0) {
                            if (rewind) cache.truncate(depth);
                            long b = System.nanoTime();
                            s.feed(ModelBench.randomTokens(rnd, vocab, o.prefillTokens()));
                            pp[r] = o.prefillTokens() / ((System.nanoTime() - b) * 1e-9);
                        }
                        log.accept(String.format("  depth %d: decode %.2f tokens/s (attention %.0f%%), prefill %.2f tokens/s; probe %.1f GB/s",
                                depth, tg[r], 100 * att[r], pp[r], bw[r]));
                    }
                    if (!rewind) {
                        log.accept(String.format("  depth %d: sliding-window layers: the runs decoded at depths %d to %d", depth, depth,
                                cache.length()));
                    }
                    double tgRate = ModelBench.median(tg), bandwidth = ModelBench.median(bw);
                    double roofline = bandwidth > 0 ? bandwidth * 1e9 / (weightBytes + readPerToken) : 0;
                    rows.add(new Row(depth, tgRate, ModelBench.median(pp), held, depth > 0 ? (double) held / depth : 0, readPerToken,
                            ModelBench.median(att), bandwidth, roofline, roofline > 0 ? tgRate / roofline : 0));
                    if (rewind) cache.truncate(depth);
                }
            }
            return rows;
        }
    }

    /**
     * Bytes of keys and values one decoded token reads at {@code depth}: every visible position of every layer, a
     * key and a value row each, or latent attention's one row.
     */
    static long kvBytesRead(ModelConfig cfg, KvType type, int depth) {
        long b = 0;
        for (int l = 0; l < cfg.blockCount(); l++) {
            int visible = depth + 1 - cfg.attentionStart(l, depth);
            b += cfg.kvRowsPerToken() * type.bytesFor((long) visible * cfg.kvDim());
        }
        return b;
    }

    /** {@code 1k,8k,32k,128k} (k = 1024) or plain numbers. */
    static int[] parseDepths(String list) {
        String[] parts = list.split(",");
        int[] d = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim().toLowerCase(java.util.Locale.ROOT);
            try {
                d[i] = p.endsWith("k") ? Math.multiplyExact(Integer.parseInt(p.substring(0, p.length() - 1)), 1024) : Integer.parseInt(p);
            } catch (NumberFormatException | ArithmeticException e) {
                throw new IllegalArgumentException("--ctx-sweep takes depths like 1k,8k,32k,128k or 4096, got '" + parts[i] + "'");
            }
            if (d[i] < 1) throw new IllegalArgumentException("--ctx-sweep depths must be at least 1, got '" + parts[i] + "'");
        }
        return d;
    }

    static void print(java.io.PrintWriter out, List<Row> rows) {
        out.printf("%8s %12s %13s %12s %12s %10s %14s %9s%n", "depth", "decode t/s", "prefill t/s", "KV B/token", "KV read/tok",
                "attention", "roofline t/s", "fraction");
        for (Row r : rows) {
            out.printf("%8d %12.2f %13.2f %12.0f %12s %9.1f%% %14.2f %8.1f%%%n", r.depth(), r.decodeTokensPerS(), r.prefillTokensPerS(),
                    r.kvBytesPerToken(), ByteSize.format(r.kvBytesReadPerToken()), 100 * r.attentionShare(), r.rooflineTokensPerS(),
                    100 * r.rooflineFraction());
        }
        out.flush();
    }

    static List<Map<String, Object>> json(List<Row> rows) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (Row r : rows) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("depth", r.depth());
            m.put("decode_tokens_per_s", r.decodeTokensPerS());
            m.put("prefill_tokens_per_s", r.prefillTokensPerS());
            m.put("kv_bytes_held", r.kvBytesHeld());
            m.put("kv_bytes_per_token", r.kvBytesPerToken());
            m.put("kv_bytes_read_per_token", r.kvBytesReadPerToken());
            m.put("attention_share_of_decode", r.attentionShare());
            m.put("read_bandwidth_gbs", r.bandwidthGBs());
            m.put("roofline_tokens_per_s", r.rooflineTokensPerS());
            m.put("roofline_fraction", r.rooflineFraction());
            list.add(m);
        }
        return list;
    }

}
