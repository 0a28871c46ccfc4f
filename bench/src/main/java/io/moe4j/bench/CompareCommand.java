package io.moe4j.bench;

import io.moe4j.cli.KvTypeOption;
import io.moe4j.cli.ThreadsOption;
import io.moe4j.kernels.Threads;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.synth.ModelShape;
import io.moe4j.tools.synth.Presets;
import io.moe4j.tools.synth.Synth;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * The comparison the product promises: a MoE model against the dense model with the same active parameters and the
 * dense model with the same total parameters, benchmarked in one run; writes a table (Markdown and JSON) and a chart
 * (SVG) into a results folder.
 */
@Command(name = "bench-compare", mixinStandardHelpOptions = true,
        description = {"Benchmark a MoE model against its dense baselines of the same active and the same total parameters.",
                "Writes results.md, results.json and chart.svg into a folder. The three models are synthesized from a "
                        + "preset (synth --dense-equivalent active|total) unless given as files."})
public final class CompareCommand implements Callable<Integer> {
    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "olmoe-1b-7b", description = "The synth preset of the MoE model (default: ${DEFAULT-VALUE}).")
    String preset;
    @Option(names = "--type", paramLabel = "T", defaultValue = "Q8_0", description = "The weight type of the synthesized models (default: ${DEFAULT-VALUE}).")
    String type;
    @Option(names = "--layers", paramLabel = "N", description = "Use N blocks instead of the preset's number, for smaller files.")
    Integer layers;
    @Option(names = "--models", paramLabel = "DIR", defaultValue = "models", description = "The folder where synthesized models are written and reused (default: ${DEFAULT-VALUE}).")
    Path modelsDir;
    @Option(names = "--moe", paramLabel = "FILE", description = "Use this MoE model instead of synthesizing one.")
    Path moe;
    @Option(names = "--dense-active", paramLabel = "FILE", description = "Use this dense model of the same active parameters instead of synthesizing one.")
    Path denseActive;
    @Option(names = "--dense-total", paramLabel = "FILE", description = "Use this dense model of the same total parameters instead of synthesizing one.")
    Path denseTotal;
    @Option(names = {"-o", "--out"}, paramLabel = "DIR", defaultValue = "results", description = "The folder the results are written to (default: ${DEFAULT-VALUE}).")
    Path out;
    @Option(names = {"-p", "--prompt-tokens"}, paramLabel = "N", defaultValue = "512", description = "The number of prompt tokens evaluated in one batch for the prefill figure (default: ${DEFAULT-VALUE}).")
    int pp;
    @Option(names = {"-n", "--gen-tokens"}, paramLabel = "N", defaultValue = "128", description = "The number of tokens decoded one at a time for the decode figure (default: ${DEFAULT-VALUE}).")
    int tg;
    @Option(names = {"-d", "--depth"}, paramLabel = "N", defaultValue = "0", description = "Also measure decode after N positions of context; 0 skips it (default: ${DEFAULT-VALUE}).")
    int depth;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "R", defaultValue = "3", description = "How many times each measurement runs; the median is reported (default: ${DEFAULT-VALUE}).")
    int reps;
    @Mixin
    KvTypeOption kvType;
    @Option(names = "--probe-mib", defaultValue = "512", paramLabel = "MIB", description = "The size in MiB of the read-bandwidth probe (default: ${DEFAULT-VALUE}).")
    int probeMib;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter outw = spec.commandLine().getOut();
        int t = Threads.count();
        List<Path> models = models(err);
        String[] roles = {"MoE", "dense, same active params", "dense, same total params"};
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            err.printf("== %s: %s%n", roles[i], models.get(i));
            ModelBench.Result r = ModelBench.run(models.get(i), new ModelBench.Options(pp, tg, depth, reps, kvType.type(), (long) probeMib << 20),
                    s -> {
                        err.println(s);
                        err.flush();
                    });
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", roles[i]);
            m.putAll(ModelBench.flat(r, t, 0, 0));
            rows.add(m);
        }
        double fma = Machine.fmaPeakGflops(5), nominal = Machine.nominalFmaPeakGflops(t);
        for (Map<String, Object> m : rows) fma = Math.max(fma, d(m, "fma_peak_gflops"));
        for (Map<String, Object> m : rows) {
            double peak = Math.max(fma, nominal);
            m.put("fma_peak_gflops", peak);
            m.put("pp_peak_fraction", d(m, "pp_gflops") / peak);
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("machine", Machine.cpuName() + " (" + Machine.cpuFlagsSummary() + ")");
        meta.put("threads", t);
        meta.put("date", java.time.LocalDate.now().toString());
        meta.put("java", System.getProperty("java.version"));
        meta.put("fma_peak_gflops", Math.max(fma, nominal));
        try {
            Files.createDirectories(out);
            String table = table(rows, meta);
            Files.writeString(out.resolve("results.md"), table);
            Map<String, Object> json = new LinkedHashMap<>(meta);
            json.put("models", rows);
            BenchCommand.writeJson(out.resolve("results.json"), json);
            Files.writeString(out.resolve("chart.svg"), Chart.svg(rows, meta));
            outw.print(table);
            outw.printf("%nwrote %s, %s, %s%n", out.resolve("results.md"), out.resolve("results.json"), out.resolve("chart.svg"));
            outw.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return 0;
    }

    private List<Path> models(PrintWriter err) {
        if (moe != null && denseActive != null && denseTotal != null) return List.of(moe, denseActive, denseTotal);
        if (moe != null || denseActive != null || denseTotal != null) {
            throw new IllegalArgumentException("give all three of --moe, --dense-active, --dense-total, or none (then they are synthesized)");
        }
        ModelShape shape = Presets.get(preset);
        if (layers != null) {
            ModelShape.Builder b = shape.toBuilder();
            b.layers = layers;
            shape = b.build().validate();
        }
        FileType ft = FileType.parse(type);
        int multiple = Math.max(32, ft.defaultType.blockSize);
        String base = preset + (layers != null ? "-l" + layers : "") + "-" + type.toLowerCase(Locale.ROOT);
        ModelShape[] shapes = {shape, Presets.denseEquivalent(shape, false, multiple), Presets.denseEquivalent(shape, true, multiple)};
        String[] names = {base + ".gguf", base + "-dense-active.gguf", base + "-dense-total.gguf"};
        List<Path> paths = new ArrayList<>();
        try {
            Files.createDirectories(modelsDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (int i = 0; i < 3; i++) {
            Path p = modelsDir.resolve(names[i]);
            if (!Files.exists(p)) {
                err.printf("synthesizing %s (%.2fB parameters)%n", p, shapes[i].totalParams() / 1e9);
                Synth.write(new Synth.Spec(shapes[i], ft, null, 42), p, Threads.count(), true);
            }
            paths.add(p);
        }
        return paths;
    }

    static String table(List<Map<String, Object>> rows, Map<String, Object> meta) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "Machine: %s, %s threads, Java %s, %s. FP32 FMA peak %.0f GFLOP/s.%n%n",
                meta.get("machine"), meta.get("threads"), meta.get("java"), meta.get("date"), d(meta, "fma_peak_gflops")));
        b.append("| model | role | params total / active | weights per token | prefill tok/s (GFLOP/s) | decode tok/s | decode GB/s | read bandwidth | roofline |\n");
        b.append("|---|---|---|---|---|---|---|---|---|\n");
        for (Map<String, Object> m : rows) {
            b.append(String.format(Locale.ROOT, "| %s | %s | %.2fB / %.2fB | %.0f MB | %.1f (%.0f) | %.2f | %.1f | %.1f GB/s | %.0f%% |%n",
                    m.get("model"), m.get("role"), d(m, "total_params") / 1e9, d(m, "active_params") / 1e9,
                    d(m, "weight_bytes_per_token") / 1e6, d(m, "pp_tokens_per_s"), d(m, "pp_gflops"), d(m, "tg_tokens_per_s"),
                    d(m, "achieved_gbs"), d(m, "read_bandwidth_gbs"), 100 * d(m, "roofline_fraction")));
        }
        if (rows.size() == 3) {
            double moe = d(rows.get(0), "tg_tokens_per_s"), active = d(rows.get(1), "tg_tokens_per_s"), total = d(rows.get(2), "tg_tokens_per_s");
            b.append(String.format(Locale.ROOT, "%nMoE decode: %.0f%% of the same-active dense model, %.1fx the same-total dense model.%n",
                    100 * moe / active, moe / total));
        }
        return b.toString();
    }

    static double d(Map<String, Object> m, String k) {
        return ((Number) m.get(k)).doubleValue();
    }
}
