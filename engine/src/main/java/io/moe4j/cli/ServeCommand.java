package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.server.OpenAiServer;
import io.moe4j.server.ServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, "
                + "/v1/models, /health, /metrics).")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOption model;
    @Mixin
    DeviceOption device;
    @Option(names = "--host", paramLabel = "ADDR", defaultValue = ServerOptions.DEFAULT_HOST,
            description = "The address to listen on; anything but loopback exposes the server to the network (default: ${DEFAULT-VALUE}).")
    String host;
    @Option(names = "--port", paramLabel = "N", defaultValue = "8080",
            description = "The TCP port to listen on; 0 picks any free one (default: ${DEFAULT-VALUE}).")
    int port;
    @Option(names = {"-np", "--parallel"}, paramLabel = "N", defaultValue = "4",
            description = "The number of sequences decoded together, one batch per step (default: ${DEFAULT-VALUE}).")
    int parallel;
    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "The context size of each sequence in tokens (default: the model's own context, or what fits in the KV budget if less).")
    int ctx;
    @Option(names = "--queue", paramLabel = "N", defaultValue = "64",
            description = "How many requests may wait for a free sequence; beyond that they get 429 (default: ${DEFAULT-VALUE}).")
    int queue;
    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Require Authorization: Bearer KEY on every endpoint but /health (default: the MOE4J_API_KEY environment variable, else none).")
    String apiKey;
    @Option(names = "--alias", paramLabel = "NAME",
            description = "The model's name in the API (default: the file name without .gguf).")
    String alias;
    @Mixin
    ChatTemplateOption chatTemplate;
    @Option(names = "--no-prompt-cache",
            description = "Do not keep the keys and values of finished sequences for reuse by later requests.")
    boolean noPromptCache;
    @Option(names = "--no-request-log",
            description = "Do not log a line per request (client, method, path, status, time, tokens) on stderr.")
    boolean noRequestLog;
    @Mixin
    KvTypeOption kvType;
    @Option(names = "--bench",
            description = "Instead of serving, measure the aggregate tokens/s of 1, 4 and 8 concurrent greedy streams through the "
                    + "server on -m FILE (default: a small synthesized MoE), and exit.")
    boolean bench;
    @Option(names = "--streams", paramLabel = "N,N,...", split = ",",
            description = "With --bench: the numbers of concurrent streams to measure (default: 1,4,8).")
    int[] benchStreams;
    @Option(names = "--tokens", paramLabel = "N",
            description = "With --bench: the tokens each stream generates (default: 128).")
    Integer benchTokens;
    @Option(names = "--repeats", paramLabel = "N",
            description = "With --bench: the runs per stream count, of which the best counts (default: 3).")
    Integer benchRepeats;
    @Mixin
    ThreadsOption threads;
    @Mixin
    KvBudgetOption kvBudget;
    @Mixin
    RopeOption rope;
    @Mixin
    BatchOption batchOption;
    @Spec
    CommandSpec spec;

    /** Binds the port, or says in one line why it cannot (in use, no such address, not allowed). */
    private OpenAiServer listen(ServerOptions o, java.util.concurrent.Callable<Model> loader) {
        String where = o.host() + ":" + o.port();
        try {
            return OpenAiServer.startLoading(o, loader);
        } catch (java.net.BindException e) {
            throw new IllegalArgumentException("cannot listen on " + where + ": " + e.getMessage()
                    + (o.port() != 0 ? " (is another server running there? --port picks another port)" : ""));
        } catch (java.net.SocketException | java.nio.channels.UnresolvedAddressException e) {
            throw new IllegalArgumentException("cannot listen on " + where + ": "
                    + (e.getMessage() != null ? e.getMessage() : "no such address on this machine") + " (check --host)");
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot listen on " + where + ": " + e.getMessage());
        }
    }

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (!bench && (benchStreams != null || benchTokens != null || benchRepeats != null)) {
            throw new IllegalArgumentException("--streams, --tokens and --repeats go with --bench");
        }
        if (bench) {
            int[] streams = benchStreams != null ? benchStreams : new int[] {1, 4, 8};
            int tokens = benchTokens != null ? benchTokens : io.moe4j.server.ServeBench.DEFAULT_TOKENS;
            int repeats = benchRepeats != null ? benchRepeats : io.moe4j.server.ServeBench.DEFAULT_REPEATS;
            if (streams.length == 0 || java.util.Arrays.stream(streams).anyMatch(n -> n < 1) || tokens < 1 || repeats < 1) {
                throw new IllegalArgumentException("--streams takes counts of at least 1, --tokens and --repeats at least 1");
            }
            Path file = model.given() ? model.resolve(spec.commandLine().getErr())
                    : io.moe4j.server.ServeBench.synthesize(io.moe4j.server.ServeBench.DEFAULT_SHAPE, io.moe4j.server.ServeBench.cacheDir());
            io.moe4j.server.ServeBench.run(file, tokens, streams, repeats, System.out);
            return 0;
        }
        PrintWriter err = spec.commandLine().getErr();
        String key = apiKey != null ? apiKey : System.getenv("MOE4J_API_KEY");
        ServerOptions o = ServerOptions.defaults().withHost(host).withPort(port).withParallel(parallel).withContextSize(ctx)
                .withQueueCapacity(queue).withApiKey(key == null || key.isBlank() ? null : key).withModelId(alias)
                .withKvType(kvType.type()).withPromptCache(!noPromptCache).withChatTemplate(chatTemplate.source());
        Path modelPath = model.resolve(err);
        io.moe4j.model.RopeOverrides ropeOverrides = rope.overrides();
        batchOption.check();
        java.util.concurrent.atomic.AtomicReference<Model> loaded = new java.util.concurrent.atomic.AtomicReference<>();
        OpenAiServer server = listen(o, () -> {
            Model m = device.load(modelPath, err, ropeOverrides);
            kvBudget.apply(m);
            batchOption.apply(m);
            loaded.set(m);
            return m;
        });
        if (!noRequestLog) {
            server.setRequestLog(line -> {
                err.println("moe4j: " + line);
                err.flush();
            });
        }
        err.printf("moe4j: listening on %s (loading %s)%n", server.baseUrl(), modelPath.getFileName());
        err.flush();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }));
        if (!server.awaitReady(1, TimeUnit.HOURS)) {
            server.close();
            throw new IllegalArgumentException("cannot load the model " + modelPath + ": " + server.loadError());
        }
        err.printf("moe4j: serving model '%s' at %s (parallel %d%s); %s%n", server.modelId(), server.baseUrl(),
                parallel, key != null ? ", API key required" : "",
                ContextInfo.describe(loaded.get(), server.scheduler().contextSize(), ctx, kvType.type()));
        err.flush();
        stopped.await();
        return 0;
    }
}
