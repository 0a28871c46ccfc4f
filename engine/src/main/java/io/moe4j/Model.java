package io.moe4j;

import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GeneratedToken;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Generator;
import io.moe4j.generate.Session;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.LoadProgress;
import io.moe4j.model.Transformer;
import io.moe4j.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * A loaded model: the entry point of the embedded API.
 *
 * <pre>{@code
 * try (var model = Model.load(Path.of("model.gguf"))) {
 *     model.generate("Once upon a time", GenerateOptions.defaults(), token -> System.out.print(token.text()));
 * }
 * }</pre>
 * A model can serve many sessions at once; each session (sequence) is used by one thread at a time.
 */
public final class Model implements AutoCloseable {
    /** Without an explicit context size, generation uses the model's context capped at this many tokens. */
    public static final int DEFAULT_CONTEXT_CAP = 4096;

    private final GgufFile file;
    private final Transformer transformer;
    private final Tokenizer tokenizer;
    /** Left beside the weights and the KV pool by the default KV budget: heap, activations, the system. */
    static final long KV_MARGIN = 2L << 30;
    private volatile KvPool kvPool;

    private Model(GgufFile file, Backend backend, LoadProgress progress) {
        this.file = file;
        try {
            this.transformer = Transformer.of(file, backend, progress);
            this.tokenizer = Tokenizer.fromGguf(file.metadata());
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /**
     * How to load a model.
     *
     * @param device   where it runs: {@code cpu} (the default) or another of {@link Backend#DEVICES}
     * @param progress told how far loading the weights has come (a large model takes seconds: its matrices are
     *                 prepared in the backend's layout); {@link LoadProgress#lines} prints it
     */
    public record LoadOptions(String device, LoadProgress progress) {
        public LoadOptions {
            if (device == null) device = "cpu";
            if (progress == null) progress = LoadProgress.NONE;
        }

        public static LoadOptions defaults() {
            return new LoadOptions("cpu", LoadProgress.NONE);
        }

        public LoadOptions withDevice(String device) {
            return new LoadOptions(device, progress);
        }

        public LoadOptions withProgress(LoadProgress progress) {
            return new LoadOptions(device, progress);
        }
    }

    /** Opens a GGUF model file on the CPU; weights stay memory-mapped until {@link #close()}. */
    public static Model load(Path path) {
        return load(path, LoadOptions.defaults());
    }

    /** {@link #load(Path)}, telling {@code progress} how far loading the weights has come. */
    public static Model load(Path path, LoadProgress progress) {
        return load(path, LoadOptions.defaults().withProgress(progress));
    }

    /**
     * Opens a GGUF model file on the device {@code options} names. An unknown device, or one this build or machine
     * cannot run, is a {@link Moe4jException} that says which and why, before the file is read.
     */
    public static Model load(Path path, LoadOptions options) {
        requireVectorApi();
        Backend backend;
        try {
            backend = Backend.open(options.device());
        } catch (IllegalArgumentException e) {
            throw new Moe4jException(e.getMessage(), e);
        }
        return new Model(GgufFile.open(path), backend, options.progress());
    }

    /** The kernels need the Vector API module; without it moe4j refuses to run rather than fall back to slow code. */
    public static void requireVectorApi() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            throw new Moe4jException("the Vector API module (jdk.incubator.vector) is missing: start the JVM with "
                    + "--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED (bin/moe4j does this)");
        }
    }

    public String name() {
        return file.metadata().getString("general.name", file.path().getFileName().toString());
    }

    public Path path() {
        return file.path();
    }

    public GgufFile file() {
        return file;
    }

    public ModelConfig config() {
        return transformer.config();
    }

    public Transformer transformer() {
        return transformer;
    }

    /** The backend that runs this model ({@link LoadOptions#device}). */
    public Backend backend() {
        return transformer.backend();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The context size used when the caller does not choose one. */
    public int defaultContextSize() {
        return Math.min(config().contextLength(), DEFAULT_CONTEXT_CAP);
    }

    /**
     * A fresh sequence with room for {@code contextSize} tokens (0: the default). Its KV pages come from
     * {@link #kvPool()} as it grows; {@link Session#close()} gives them back (an unreachable session does too).
     */
    public Session newSession(int contextSize, KvType kvType) {
        int ctx = contextSize > 0 ? contextSize : defaultContextSize();
        return new Session(transformer, new KvCache(config(), ctx, kvType, kvPool()));
    }

    /** The pool of KV pages of this model's sessions (budget: {@link #setKvBudget}, else {@link #defaultKvBudget}). */
    public KvPool kvPool() {
        KvPool p = kvPool;
        if (p == null) {
            synchronized (this) {
                if (kvPool == null) kvPool = backend().kvPool(defaultKvBudget());
                p = kvPool;
            }
        }
        return p;
    }

    /**
     * Sets the byte budget of the KV pool ({@code --kv-budget}); sessions made afterwards use the new pool, those
     * made before keep theirs.
     */
    public synchronized void setKvBudget(long bytes) {
        if (bytes <= 0) throw new IllegalArgumentException("the KV budget must be positive, got " + bytes + " bytes");
        kvPool = backend().kvPool(bytes);
    }

    /**
     * What fits beside the weights: the machine's physical memory less the model file (mapped, and for most
     * types copied into the kernels' layout once more) and a margin of 2 GiB; at least 256 MiB.
     */
    public long defaultKvBudget() {
        long model;
        try {
            model = java.nio.file.Files.size(file.path());
        } catch (java.io.IOException e) {
            model = 0;
        }
        return Math.max(256L << 20, KvPool.physicalMemory() - model - KV_MARGIN);
    }

    /** Tokenizes a prompt the way generation does: BOS as the model asks, special tokens parsed. */
    public int[] tokenize(String prompt) {
        return tokenizer.encode(prompt, tokenizer.addBosByDefault(), true);
    }

    /** Generates a continuation of {@code prompt}, streaming each token to {@code onToken} (may be null). */
    public GenerationResult generate(String prompt, GenerateOptions options, Consumer<GeneratedToken> onToken) {
        try (Session session = newSession(options.contextSize(), options.kvType())) {
            return new Generator(tokenizer).generate(session, tokenize(prompt), options, onToken, null);
        }
    }

    public GenerationResult generate(String prompt, GenerateOptions options) {
        return generate(prompt, options, null);
    }

    @Override
    public void close() {
        file.close();
    }
}
