package io.moe4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.cli.KvTypeOption;
import io.moe4j.cli.ThreadsOption;
import io.moe4j.kernels.Threads;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Measure a model's prefill and decode speed against what the machine allows.",
                "Decode tokens/s is set against the memory-bandwidth roofline (read bandwidth / weight bytes per token), "
                        + "prefill GFLOP/s against the measured FP32 FMA peak."})
public final class BenchCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", required = true, description = "The GGUF model file to measure.")
    Path model;
    @Option(names = {"-p", "--prompt-tokens"}, paramLabel = "N", defaultValue = "512", description = "The number of prompt tokens evaluated in one batch for the prefill figure (default: ${DEFAULT-VALUE}).")
    int pp;
    @Option(names = {"-n", "--gen-tokens"}, paramLabel = "N", defaultValue = "128", description = "The number of tokens decoded one at a time for the decode figure (default: ${DEFAULT-VALUE}).")
    int tg;
    @Option(names = {"-d", "--depth"}, paramLabel = "N", defaultValue = "4096",
            description = "Also measure decode after N positions of context; 0 skips it (default: ${DEFAULT-VALUE}).")
    int depth;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "R", defaultValue = "3", description = "How many times each measurement runs; the median is reported (default: ${DEFAULT-VALUE}).")
    int reps;
    @Mixin
    KvTypeOption kvType;
    @Option(names = "--probe-mib", defaultValue = "512",
            paramLabel = "MIB",
            description = "The size in MiB of the read-bandwidth probe run before and after each decode repetition (default: ${DEFAULT-VALUE}).")
    int probeMib;
    @Option(names = "--json", paramLabel = "FILE", description = "Also write the figures to FILE as flat JSON.")
    Path json;
    @Option(names = "--ctx-sweep", paramLabel = "DEPTHS",
            description = "Instead of the figures above, measure at each context depth (e.g. 1k,8k,32k,128k; k = 1024): "
                    + "decode tokens/s, prefill tokens/s of -p tokens on top of the context, KV bytes per token, "
                    + "attention's share of decode time and the roofline of weight plus KV bytes read per token. The "
                    + "cache is filled with random keys and values, not by evaluating a prompt.")
    String ctxSweep;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        threads.apply();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        int t = Threads.count();
        err.printf("machine: %s, %d threads (%s)%n", Machine.cpuName(), t, Machine.cpuFlagsSummary());
        if (ctxSweep != null) return sweep(out, err, t);
        ModelBench.Result r = ModelBench.run(model, new ModelBench.Options(pp, tg, depth, reps, kvType.type(), (long) probeMib << 20), s -> {
            err.println(s);
            err.flush();
        });
        double fma = Machine.fmaPeakGflops(5);
        double nominal = Machine.nominalFmaPeakGflops(t);
        err.printf("FP32 FMA peak %.0f GFLOP/s measured (%.0f nominal at %.2f GHz)%n", fma, nominal, Machine.clockGHz());
        Map<String, Object> m = new LinkedHashMap<>(ModelBench.flat(r, t, fma, nominal));
        m.put("machine", Machine.cpuName());
        m.put("date", java.time.LocalDate.now().toString());
        m.put("java", System.getProperty("java.version"));
        printTable(out, m);
        if (json != null) writeJson(json, m);
        return 0;
    }

    private int sweep(PrintWriter out, PrintWriter err, int threads) {
        int[] depths = ContextSweep.parseDepths(ctxSweep);
        if (tg < 1 || reps < 1 || pp < 0) throw new IllegalArgumentException("--ctx-sweep needs -n and -r of at least 1 and -p of 0 or more");
        List<ContextSweep.Row> rows = ContextSweep.run(model, new ContextSweep.Options(depths, pp, tg, reps, kvType.type(),
                (long) probeMib << 20), s -> {
            err.println(s);
            err.flush();
        });
        out.printf("%s, %s KV cache, %s (%s), %d threads; decode of %d tokens and prefill of %d tokens at each depth%n",
                model.getFileName(), kvType.type(), Machine.cpuName(), java.time.LocalDate.now(), threads, tg, pp);
        ContextSweep.print(out, rows);
        out.printf("peak RSS %.2f GB%n", Machine.peakRssBytes() / 1e9);
        out.flush();
        if (json != null) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", model.getFileName().toString());
            m.put("kv_type", kvType.type().name());
            m.put("machine", Machine.cpuName());
            m.put("date", java.time.LocalDate.now().toString());
            m.put("threads", threads);
            m.put("decode_tokens", tg);
            m.put("prefill_tokens", pp);
            m.put("peak_rss_bytes", Machine.peakRssBytes());
            m.put("depths", ContextSweep.json(rows));
            writeJson(json, m);
        }
        return 0;
    }

    static void printTable(PrintWriter out, Map<String, Object> m) {
        out.printf("%-34s %s%n", "model", m.get("model"));
        out.printf("%-34s %s (%s), %d threads%n", "machine", m.get("machine"), m.get("date"), (Integer) m.get("threads"));
        out.printf("%-34s %.2f B total, %.2f B active%n", "parameters", (Long) m.get("total_params") / 1e9, (Long) m.get("active_params") / 1e9);
        out.printf("%-34s %.1f MB%n", "weight bytes per token", (Long) m.get("weight_bytes_per_token") / 1e6);
        out.printf("%-34s %.2f tokens/s, %.1f GFLOP/s = %.0f%% of FP32 FMA peak (%.0f GFLOP/s)%n", "prefill " + m.get("pp_tokens") + " tokens",
                d(m, "pp_tokens_per_s"), d(m, "pp_gflops"), 100 * d(m, "pp_peak_fraction"), d(m, "fma_peak_gflops"));
        out.printf("%-34s %.2f tokens/s (best %.2f), %.1f GB/s%n", "decode " + m.get("tg_tokens") + " tokens", d(m, "tg_tokens_per_s"),
                d(m, "tg_best_tokens_per_s"), d(m, "achieved_gbs"));
        if ((Integer) m.get("tg_depth") > 0) {
            out.printf("%-34s %.2f tokens/s (+%.1f MB of KV cache per token)%n", "decode at depth " + m.get("tg_depth"),
                    d(m, "tg_depth_tokens_per_s"), (Long) m.get("kv_bytes_per_token_at_depth") / 1e6);
        }
        out.printf("%-34s %.1f GB/s -> roofline %.2f tokens/s (median over the runs)%n", "read bandwidth (probe)",
                d(m, "read_bandwidth_gbs"), d(m, "roofline_tokens_per_s"));
        out.printf("%-34s %.1f%% (median of each run against the probes around it)%n", "fraction of roofline", 100 * d(m, "roofline_fraction"));
        if (Boolean.TRUE.equals(m.get("moe"))) {
            out.printf("%-34s %.2f%% of decode time%n", "router, top-k and combine", 100 * d(m, "router_topk_combine_fraction"));
        }
        out.printf("%-34s %.2f GB%n", "peak RSS", (Long) m.get("peak_rss_bytes") / 1e9);
        out.flush();
    }

    private static double d(Map<String, Object> m, String k) {
        return ((Number) m.get(k)).doubleValue();
    }

    static void writeJson(Path file, Object value) {
        try {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
