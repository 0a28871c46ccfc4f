package io.moe4j;

import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GeneratedToken;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Generator;
import io.moe4j.generate.Session;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.LoadProgress;
import io.moe4j.model.RopeOverrides;
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
    private final GgufFile file;
    private final Transformer transformer;
    private final Tokenizer tokenizer;
    /** Left beside the weights and the KV pool by the default KV budget: heap, activations, the system. */
    static final long KV_MARGIN = 2L << 30;
    private volatile KvPool kvPool;
    private volatile int prefillBatch;

    private Model(GgufFile file, Backend backend, LoadOptions options) {
        this.file = file;
        try {
            this.transformer = Transformer.of(file, backend, options.progress(), options.rope());
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
     * @param rope     RoPE parameters that replace the file's ({@link RopeOverrides#NONE}: the file's)
     */
    public record LoadOptions(String device, LoadProgress progress, RopeOverrides rope) {
        public LoadOptions {
            if (device == null) device = "cpu";
            if (progress == null) progress = LoadProgress.NONE;
            if (rope == null) rope = RopeOverrides.NONE;
        }

        public LoadOptions(String device, LoadProgress progress) {
            this(device, progress, RopeOverrides.NONE);
        }

        public static LoadOptions defaults() {
            return new LoadOptions("cpu", LoadProgress.NONE, RopeOverrides.NONE);
        }

        public LoadOptions withDevice(String device) {
            return new LoadOptions(device, progress, rope);
        }

        public LoadOptions withProgress(LoadProgress progress) {
            return new LoadOptions(device, progress, rope);
        }

        public LoadOptions withRope(RopeOverrides rope) {
            return new LoadOptions(device, progress, rope);
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
        return new Model(GgufFile.open(path), backend, options);
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

    /**
     * The context size used when the caller does not choose one: the model's own ({@link ModelConfig#modelContext}),
     * or, when one sequence's cache of that length would not fit in the KV budget ({@link #kvPool()}), the longest
     * that does (rounded down to whole pages). Memory for long contexts is only taken as a sequence grows.
     */
    public int defaultContextSize(KvType type) {
        int model = config().modelContext();
        int fits = KvCache.contextWithin(config(), type, kvPool().stats().budget(), model);
        return fits >= model ? model : Math.max(1, fits / KvStore.PAGE * KvStore.PAGE);
    }

    /** {@link #defaultContextSize(KvType)} for the default F16 cache. */
    public int defaultContextSize() {
        return defaultContextSize(KvType.F16);
    }

    /** The most memory one sequence's KV cache of {@code contextSize} positions of {@code type} takes. */
    public long kvBytes(int contextSize, KvType type) {
        return KvCache.bytesFor(config(), type, contextSize);
    }

    /**
     * A fresh sequence with room for {@code contextSize} tokens (0: the default). Its KV pages come from
     * {@link #kvPool()} as it grows; {@link Session#close()} gives them back (an unreachable session does too).
     */
    public Session newSession(int contextSize, KvType kvType) {
        int ctx = contextSize > 0 ? contextSize : defaultContextSize(kvType);
        return new Session(transformer, new KvCache(config(), ctx, kvType, kvPool()),
                prefillBatch > 0 ? prefillBatch : Session.PREFILL_BATCH);
    }

    /**
     * Sets how many prompt tokens one forward pass evaluates ({@code --batch}): activation memory grows with it,
     * not with the prompt; larger batches read each weight for more tokens at once.
     */
    public void setPrefillBatch(int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("the prefill batch must be at least 1 token, got " + tokens);
        prefillBatch = tokens;
    }

    /**
     * The prefill batch set by {@link #setPrefillBatch}, or 0 when none was: sessions then use
     * {@link Session#PREFILL_BATCH} and the server its own default, which is smaller so that running streams wait
     * less for a new prompt's chunk.
     */
    public int prefillBatch() {
        return prefillBatch;
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
