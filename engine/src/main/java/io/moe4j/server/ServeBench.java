package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.kernels.GgmlType;
import io.moe4j.model.DefaultModel;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelStats;
import io.moe4j.model.Transformer;
import io.moe4j.model.arch.Llama;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Serving throughput: aggregate generated tokens per second for 1, 4 and 8 concurrent greedy streams through the
 * HTTP server, on a synthesized Mixtral-shaped MoE (random weights, the embedded model's vocabulary). With
 * continuous batching every step reads the weights once for all streams, so the aggregate grows with the streams.
 *
 * <pre>{@code
 * bin/moe4j serve --bench                      # defaults below
 * java ... io.moe4j.server.ServeBench [--embd 256] [--layers 4] [--heads 8] [--kv-heads 2] [--experts 8] [--used 2]
 *                                     [--ffn 512] [--tokens 128] [--repeats 3] [--streams 1,4,8] [--threads K]
 * }</pre>
 * It warms up until the JIT has nothing left to compile, then runs each stream count {@code repeats} times, the counts
 * in turn, and keeps the best run of each (other processes share the cores). Then it times the same steps through
 * the model alone ({@link Transformer#forward}, no HTTP, clients or scheduler), to tell the decode steps' share.
 * Batching pays where a step's cost is dominated by reading weights and by per-step work (dispatch, routing);
 * once the matrix products are compute-bound (wide models on few cores), the gain shrinks.
 */
public final class ServeBench {
    /** Shape of the synthesized model. */
    public record Shape(int embd, int layers, int heads, int kvHeads, int experts, int used, int ffn) {
        String fileName() {
            return String.format("moe4j-bench-moe-e%d-l%d-h%d-kv%d-x%d-k%d-f%d-q8_0.gguf", embd, layers, heads, kvHeads, experts, used, ffn);
        }
    }

    /** Mixtral's layout scaled down: 8 experts, 2 per token; 256 wide, 4 layers, 8 heads (2 for keys/values). */
    public static final Shape DEFAULT_SHAPE = new Shape(256, 4, 8, 2, 8, 2, 512);
    public static final int DEFAULT_TOKENS = 128, DEFAULT_REPEATS = 3;

    /** One measurement: {@code streams} concurrent requests of {@code tokens} tokens each. */
    public record Result(int streams, long tokens, double seconds) {
        public double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    private ServeBench() {
    }

    public static void main(String[] args) throws Exception {
        Shape s = DEFAULT_SHAPE;
        int tokens = DEFAULT_TOKENS, repeats = DEFAULT_REPEATS;
        int[] streams = {1, 4, 8};
        Path model = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--embd" -> s = new Shape(Integer.parseInt(v), s.layers(), s.heads(), s.kvHeads(), s.experts(), s.used(), s.ffn());
                case "--heads" -> s = new Shape(s.embd(), s.layers(), Integer.parseInt(v), s.kvHeads(), s.experts(), s.used(), s.ffn());
                case "--kv-heads" -> s = new Shape(s.embd(), s.layers(), s.heads(), Integer.parseInt(v), s.experts(), s.used(), s.ffn());
                case "--repeats" -> repeats = Integer.parseInt(v);
                case "--layers" -> s = new Shape(s.embd(), Integer.parseInt(v), s.heads(), s.kvHeads(), s.experts(), s.used(), s.ffn());
                case "--experts" -> s = new Shape(s.embd(), s.layers(), s.heads(), s.kvHeads(), Integer.parseInt(v), s.used(), s.ffn());
                case "--used" -> s = new Shape(s.embd(), s.layers(), s.heads(), s.kvHeads(), s.experts(), Integer.parseInt(v), s.ffn());
                case "--ffn" -> s = new Shape(s.embd(), s.layers(), s.heads(), s.kvHeads(), s.experts(), s.used(), Integer.parseInt(v));
                case "-m", "--model" -> model = Path.of(v);
                case "--tokens" -> tokens = Integer.parseInt(v);
                case "--streams" -> streams = java.util.Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray();
                case "--threads" -> io.moe4j.kernels.Threads.set(Integer.parseInt(v));
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
            i++;
        }
        if (model != null) run(model, tokens, streams, repeats, System.out);
        else run(s, tokens, streams, repeats, System.out);
    }

    /** Synthesizes (or reuses) the model, serves it, measures every stream count, prints a table. */
    public static List<Result> run(Shape shape, int tokens, int[] streams, int repeats, PrintStream out) throws Exception {
        return run(synthesize(shape, cacheDir()), tokens, streams, repeats, out);
    }

    /** Serves the model in {@code file}, measures every stream count, prints a table. */
    public static List<Result> run(Path file, int tokens, int[] streams, int repeats, PrintStream out) throws Exception {
        return run(file, tokens, streams, repeats, WARM_UP_LIMIT_NANOS, out);
    }

    /** {@link #run(Path, int, int[], int, PrintStream)} with at most {@code warmUpNanos} of warm-up per part (at least two rounds). */
    static List<Result> run(Path file, int tokens, int[] streams, int repeats, long warmUpNanos, PrintStream out) throws Exception {
        out.printf("model: %s (%.0f MiB), %d tokens per stream, best of %d, %d threads%n", file.getFileName(),
                Files.size(file) / 1048576.0, tokens, repeats, io.moe4j.kernels.Threads.count());
        int max = java.util.Arrays.stream(streams).max().orElse(1);
        List<Result> results, steps;
        ModelStats stats;
        try (Model model = Model.load(file)) {
            ServerOptions options = ServerOptions.defaults().withPort(0).withParallel(max)
                    .withContextSize(Math.max(256, tokens + 64)).withPromptCache(false);
            try (OpenAiServer server = OpenAiServer.start(options, model)) {
                stats = ModelStats.of(model.file(), model.config());
                warmUp(warmUpNanos, () -> {
                    for (int n : streams) measure(server, n, Math.min(tokens, 32));
                });
                results = best(streams, repeats, n -> measure(server, n, tokens));
                for (Result r : results) {
                    out.printf("%2d stream(s): %5d tokens in %6.2f s = %8.1f tokens/s aggregate%n", r.streams(), r.tokens(), r.seconds(), r.tokensPerSecond());
                }
            }
            // The same token counts through the model alone: what the decode steps give, without HTTP, the clients
            // and the scheduler (which share the cores with the steps above).
            out.printf("model steps alone (Transformer.forward, no HTTP or scheduler), %d steps, best of %d:%n", tokens, Math.max(1, repeats));
            warmUp(warmUpNanos, () -> {
                for (int n : streams) measureSteps(model.transformer(), options.kvType(), n, Math.min(tokens, 32));
            });
            steps = best(streams, repeats, n -> measureSteps(model.transformer(), options.kvType(), n, tokens));
            for (Result r : steps) {
                out.printf("%2d token(s) per step: %7.3f ms per step = %8.1f tokens/s%n", r.streams(), r.seconds() * 1e3 * r.streams() / r.tokens(),
                        r.tokensPerSecond());
            }
        }
        // results and steps hold the stream counts in the same order
        int single = java.util.stream.IntStream.range(0, streams.length).filter(i -> streams[i] == 1).findFirst().orElse(-1);
        if (single >= 0) {
            Result one = results.get(single), oneStep = steps.get(single);
            for (int i = 0; i < results.size(); i++) {
                Result r = results.get(i);
                if (r.streams() <= 1) continue;
                double step = stats.batchStepBytes(r.streams()), oneToken = stats.decodeBytesPerToken();
                out.printf("%d streams / 1 stream: %.2fx, model steps alone %.2fx (memory-bound ceiling %.2fx: a step reads %.0f MiB "
                                + "of weights for %d tokens, one token %.0f MiB)%n", r.streams(), r.tokensPerSecond() / one.tokensPerSecond(),
                        steps.get(i).tokensPerSecond() / oneStep.tokensPerSecond(), oneToken * r.streams() / step, step / 1048576.0,
                        r.streams(), oneToken / 1048576.0);
            }
        }
        return results;
    }

    /** One measurement of {@code streams} streams. */
    @FunctionalInterface
    interface Measurement {
        Result run(int streams) throws Exception;
    }

    /** A warm-up round, repeated until the JIT compiler has had nothing new to compile for a whole round. */
    @FunctionalInterface
    interface Round {
        void run() throws Exception;
    }

    /**
     * Runs warm-up rounds until a round passes without the JIT compiling anything (at least two rounds, at most
     * {@code limitNanos}): C2 compiles the Vector API kernels for seconds, and on few cores a compiler
     * thread takes a core from the steps (a single stream measured while C2 still compiled ran 0.37-0.65 ms per step
     * instead of 0.30).
     */
    static void warmUp(long limitNanos, Round round) throws Exception {
        java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        long start = System.nanoTime(), before = timed ? jit.getTotalCompilationTime() : 0;
        for (int i = 0; ; i++) {
            round.run();
            long after = timed ? jit.getTotalCompilationTime() : 0;
            if (i >= 1 && (after == before || !timed) || System.nanoTime() - start > limitNanos) return;
            before = after;
        }
    }

    /** The longest warm-up of each part (HTTP, model steps). */
    static final long WARM_UP_LIMIT_NANOS = 30_000_000_000L;

    /**
     * The best of {@code repeats} runs per stream count, the counts taken in turn (1, 4, 8, 1, 4, 8, ...), so that a
     * slow spell of the machine (other programs share the cores) falls on all of them alike.
     */
    static List<Result> best(int[] streams, int repeats, Measurement m) throws Exception {
        Result[] best = new Result[streams.length];
        for (int k = 0; k < Math.max(1, repeats); k++) {
            for (int i = 0; i < streams.length; i++) {
                Result x = m.run(streams[i]);
                if (best[i] == null || x.tokensPerSecond() > best[i].tokensPerSecond()) best[i] = x;
            }
        }
        return List.of(best);
    }

    /**
     * {@code n} sequences decoding {@code tokens} greedy tokens each in lock-step, one token per sequence and step, as
     * the scheduler batches them, but called directly: the time of the forward passes alone.
     */
    static Result measureSteps(Transformer transformer, KvType kvType, int n, int tokens) {
        List<KvCache> caches = new ArrayList<>();
        int[] next = new int[n];
        int vocab = transformer.vocabSize();
        for (int s = 0; s < n; s++) {
            caches.add(new KvCache(transformer.config(), tokens, kvType));
            next[s] = (1000 + 37 * s) % vocab;
        }
        long t0 = System.nanoTime();
        for (int step = 0; step < tokens; step++) {
            List<Transformer.SequenceInput> inputs = new ArrayList<>(n);
            for (int s = 0; s < n; s++) inputs.add(new Transformer.SequenceInput(caches.get(s), new int[] {next[s]}, false));
            float[][] logits = transformer.forward(inputs, null);
            for (int s = 0; s < n; s++) next[s] = io.moe4j.generate.Sampler.argmax(logits[s]);
        }
        return new Result(n, (long) n * tokens, (System.nanoTime() - t0) / 1e9);
    }

    /** {@code n} greedy streams at once, each generating exactly {@code tokens} tokens; aggregate over the wall time. */
    static Result measure(OpenAiServer server, int n, int tokens) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        ObjectMapper json = new ObjectMapper();
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Long>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String body = "{\"model\": \"" + server.modelId() + "\", \"prompt\": \"once upon a time " + "the ".repeat(i) + "\", "
                    + "\"temperature\": 0, \"max_tokens\": " + tokens + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}";
            HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/completions"))
                    .timeout(Duration.ofMinutes(10)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
            futures.add(pool.submit(() -> {
                go.await();
                HttpResponse<java.io.InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
                long generated = 0;
                try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = in.readLine()) != null) {
                        if (!line.startsWith("data: {")) continue;
                        JsonNode u = json.readTree(line.substring(6)).get("usage");
                        if (u != null && !u.isNull()) generated = u.get("completion_tokens").asLong();
                    }
                }
                return generated;
            }));
        }
        long t0 = System.nanoTime();
        go.countDown();
        long total = 0;
        for (Future<Long> f : futures) total += f.get(10, TimeUnit.MINUTES);
        double seconds = (System.nanoTime() - t0) / 1e9;
        pool.shutdown();
        return new Result(n, total, seconds);
    }

    public static Path cacheDir() throws IOException {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        Path dir = base.resolve("moe4j");
        Files.createDirectories(dir);
        return dir;
    }

    /**
     * Writes a Mixtral-layout MoE with random weights of this shape into {@code dir} (once; reused after), with the
     * embedded default model's vocabulary: the matrices in Q8_0 (the usual serving type), norms and router in F32.
     * Every expert is used about equally (a random router).
     */
    public static Path synthesize(Shape s, Path dir) {
        Path file = dir.resolve(s.fileName());
        if (Files.isRegularFile(file)) {
            try (GgufFile ignored = GgufFile.open(file)) {
                return file;
            } catch (RuntimeException e) {
                // made again below
            }
        }
        Map<String, GgufValue> md = new LinkedHashMap<>();
        int vocab;
        try (GgufFile vocabSource = GgufFile.open(DefaultModel.ensure())) {
            vocab = vocabSource.metadata().getStringArray("tokenizer.ggml.tokens").length;
            String arch = Llama.SPEC.name();
            md.put("general.architecture", GgufValue.of(arch));
            md.put("general.name", GgufValue.of("moe4j synthesized bench MoE"));
            md.put(arch + ".context_length", GgufValue.ofU32(4096));
            md.put(arch + ".embedding_length", GgufValue.ofU32(s.embd()));
            md.put(arch + ".block_count", GgufValue.ofU32(s.layers()));
            md.put(arch + ".feed_forward_length", GgufValue.ofU32(s.ffn()));
            md.put(arch + ".attention.head_count", GgufValue.ofU32(s.heads()));
            md.put(arch + ".attention.head_count_kv", GgufValue.ofU32(s.kvHeads()));
            md.put(arch + ".rope.freq_base", GgufValue.ofF32(10000f));
            md.put(arch + ".attention.layer_norm_rms_epsilon", GgufValue.ofF32(1e-5f));
            md.put(arch + ".expert_count", GgufValue.ofU32(s.experts()));
            md.put(arch + ".expert_used_count", GgufValue.ofU32(s.used()));
            for (String k : vocabSource.metadata().keys()) {
                if (k.startsWith("tokenizer.")) md.put(k, vocabSource.metadata().get(k));
            }
        }
        int e = s.embd(), kv = e / s.heads() * s.kvHeads();
        final GgmlType Q = GgmlType.Q8_0;
        SplittableRandom rng = new SplittableRandom(42);
        double sd = 1.0 / Math.sqrt(e);
        try (GgufWriter w = GgufWriter.create(file, md)) {
            w.addTensor("token_embd.weight", Q, e, vocab);
            w.addTensor("output_norm.weight", GgmlType.F32, e);
            w.addTensor("output.weight", Q, e, vocab);
            for (int l = 0; l < s.layers(); l++) {
                String b = "blk." + l + ".";
                w.addTensor(b + "attn_norm.weight", GgmlType.F32, e);
                w.addTensor(b + "attn_q.weight", Q, e, e);
                w.addTensor(b + "attn_k.weight", Q, e, kv);
                w.addTensor(b + "attn_v.weight", Q, e, kv);
                w.addTensor(b + "attn_output.weight", Q, e, e);
                w.addTensor(b + "ffn_norm.weight", GgmlType.F32, e);
                w.addTensor(b + "ffn_gate_inp.weight", GgmlType.F32, e, s.experts());
                w.addTensor(b + "ffn_gate_exps.weight", Q, e, s.ffn(), s.experts());
                w.addTensor(b + "ffn_up_exps.weight", Q, e, s.ffn(), s.experts());
                w.addTensor(b + "ffn_down_exps.weight", Q, s.ffn(), e, s.experts());
            }
            w.writeData("token_embd.weight", q8(gaussian(rng, e * vocab, 1.0)));
            w.writeData("output_norm.weight", ones(e));
            float[] out = gaussian(rng, e * vocab, 3 * sd);
            // Control and byte tokens (the first 3 + 256 of the embedded vocabulary) never win: streams run to max_tokens.
            java.util.Arrays.fill(out, 0, Math.min(259, vocab) * e, 0f);
            w.writeData("output.weight", q8(out));
            for (int l = 0; l < s.layers(); l++) {
                String b = "blk." + l + ".";
                w.writeData(b + "attn_norm.weight", ones(e));
                w.writeData(b + "attn_q.weight", q8(gaussian(rng, e * e, sd)));
                w.writeData(b + "attn_k.weight", q8(gaussian(rng, e * kv, sd)));
                w.writeData(b + "attn_v.weight", q8(gaussian(rng, e * kv, sd)));
                w.writeData(b + "attn_output.weight", q8(gaussian(rng, e * e, sd)));
                w.writeData(b + "ffn_norm.weight", ones(e));
                w.writeData(b + "ffn_gate_inp.weight", gaussian(rng, e * s.experts(), 3 * sd));
                for (String t : new String[] {"ffn_gate_exps", "ffn_up_exps"}) {
                    w.writeData(b + t + ".weight", q8(gaussian(rng, e * s.ffn() * s.experts(), sd)));
                }
                w.writeData(b + "ffn_down_exps.weight", q8(gaussian(rng, s.ffn() * e * s.experts(), 1.0 / Math.sqrt(s.ffn()))));
            }
            return w.finish();
        }
    }

    private static byte[] q8(float[] values) {
        byte[] out = new byte[Math.toIntExact(GgmlType.Q8_0.bytesFor(values.length))];
        io.moe4j.kernels.BlockCodec.encode(GgmlType.Q8_0, values, 0, values.length, java.lang.foreign.MemorySegment.ofArray(out), 0);
        return out;
    }

    private static float[] gaussian(SplittableRandom rng, int n, double sd) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rng.nextGaussian() * sd);
        return a;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }
}
