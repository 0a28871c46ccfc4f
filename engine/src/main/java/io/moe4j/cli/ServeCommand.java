package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.model.DefaultModel;
import io.moe4j.server.OpenAiServer;
import io.moe4j.server.ServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

@Command(name = "serve", description = "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, "
        + "/v1/models, /health, /metrics).")
final class ServeCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "GGUF model file (default: a small embedded random-weight MoE)")
    Path model;
    @Option(names = "--host", defaultValue = ServerOptions.DEFAULT_HOST, description = "address to bind (default: ${DEFAULT-VALUE})")
    String host;
    @Option(names = "--port", defaultValue = "8080", description = "TCP port, 0 for any free one (default: ${DEFAULT-VALUE})")
    int port;
    @Option(names = {"-np", "--parallel"}, paramLabel = "N", defaultValue = "4",
            description = "sequences decoded together, one batch per step (default: ${DEFAULT-VALUE})")
    int parallel;
    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "context size per sequence in tokens (default: the model's, at most 4096)")
    int ctx;
    @Option(names = "--queue", paramLabel = "N", defaultValue = "64",
            description = "requests that may wait for a free sequence; beyond, 429 (default: ${DEFAULT-VALUE})")
    int queue;
    @Option(names = "--api-key", paramLabel = "KEY", description = "require Authorization: Bearer KEY on every endpoint but /health "
            + "(also read from the MOE4J_API_KEY environment variable)")
    String apiKey;
    @Option(names = "--alias", paramLabel = "NAME", description = "the model's name in the API (default: the file name without .gguf)")
    String alias;
    @Option(names = "--chat-template", paramLabel = "FILE", description = "a Jinja chat template replacing the model's own")
    Path chatTemplate;
    @Option(names = "--no-prompt-cache", description = "do not keep finished sequences' keys and values for reuse")
    boolean noPromptCache;
    @Option(names = "--kv-type", defaultValue = "f16", converter = KvTypeConverter.class, description = "KV cache type f16|f32 (default: ${DEFAULT-VALUE})")
    KvBuffer.Type kvType;
    @Option(names = "--bench", description = "instead of serving: measure aggregate tokens/s of 1, 4 and 8 concurrent greedy "
            + "streams through the server on -m MODEL (default: a small synthesized MoE), and exit")
    boolean bench;
    @Option(names = "--streams", paramLabel = "N,N,...", split = ",",
            description = "with --bench: the concurrent stream counts to measure (default: 1,4,8)")
    int[] benchStreams;
    @Option(names = "--tokens", paramLabel = "N", description = "with --bench: tokens generated per stream (default: 128)")
    Integer benchTokens;
    @Option(names = "--repeats", paramLabel = "N", description = "with --bench: runs per stream count, the best counts (default: 3)")
    Integer benchRepeats;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (!bench && (benchStreams != null || benchTokens != null || benchRepeats != null)) {
            throw new IllegalArgumentException("--streams, --tokens and --repeats go with --bench");
        }
        if (bench) {
            if (model != null && !Files.isRegularFile(model)) throw new IllegalArgumentException("no model file at " + model);
            int[] streams = benchStreams != null ? benchStreams : new int[] {1, 4, 8};
            int tokens = benchTokens != null ? benchTokens : io.moe4j.server.ServeBench.DEFAULT_TOKENS;
            int repeats = benchRepeats != null ? benchRepeats : io.moe4j.server.ServeBench.DEFAULT_REPEATS;
            if (streams.length == 0 || java.util.Arrays.stream(streams).anyMatch(n -> n < 1) || tokens < 1 || repeats < 1) {
                throw new IllegalArgumentException("--streams takes counts of at least 1, --tokens and --repeats at least 1");
            }
            Path file = model != null ? model
                    : io.moe4j.server.ServeBench.synthesize(io.moe4j.server.ServeBench.DEFAULT_SHAPE, io.moe4j.server.ServeBench.cacheDir());
            io.moe4j.server.ServeBench.run(file, tokens, streams, repeats, System.out);
            return 0;
        }
        PrintWriter err = spec.commandLine().getErr();
        Path path = model;
        if (path == null) {
            path = DefaultModel.ensure();
            err.println("moe4j: no -m given: serving the embedded default model, a small random-weight MoE ("
                    + DefaultModel.DESCRIPTION + "); its text is gibberish by design");
        }
        if (!Files.isRegularFile(path)) throw new IllegalArgumentException("no model file at " + path);
        String key = apiKey != null ? apiKey : System.getenv("MOE4J_API_KEY");
        String template = chatTemplate == null ? null : Files.readString(chatTemplate);
        ServerOptions o = ServerOptions.defaults().withHost(host).withPort(port).withParallel(parallel).withContextSize(ctx)
                .withQueueCapacity(queue).withApiKey(key == null || key.isBlank() ? null : key).withModelId(alias)
                .withKvType(kvType).withPromptCache(!noPromptCache).withChatTemplate(template);
        Path modelPath = path;
        OpenAiServer server = OpenAiServer.startLoading(o, () -> Model.load(modelPath, ConsoleLoadProgress.of(err, modelPath)));
        err.printf("moe4j: listening on %s (loading %s)%n", server.baseUrl(), modelPath.getFileName());
        err.flush();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }));
        if (server.awaitReady(1, TimeUnit.HOURS)) {
            err.printf("moe4j: serving model '%s' at %s (parallel %d, context %d tokens%s)%n", server.modelId(), server.baseUrl(),
                    parallel, server.scheduler().contextSize(), key != null ? ", API key required" : "");
        } else {
            err.println("moe4j: the model could not be loaded; see the log above. /health reports the error.");
        }
        err.flush();
        stopped.await();
        return 0;
    }
}
