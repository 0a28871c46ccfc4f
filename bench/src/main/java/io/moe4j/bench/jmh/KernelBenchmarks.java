package io.moe4j.bench.jmh;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.BlockCodec;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.ModelSource;
import io.moe4j.kernels.Tensor;
import io.moe4j.kernels.Threads;
import io.moe4j.kernels.Weight;
import io.moe4j.kernels.WeightLoader;
import io.moe4j.kernels.WeightMatrix;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmarks of a {@link Backend}'s kernels, per weight type: matrix × vector (decode) over more weight memory
 * than the caches hold, matrix × matrix (prefill, batches) and attention over a 4k F16 cache. They go through the
 * {@code Backend} interface only ({@code device}: {@link Backend#open}), as the engine does, so every backend is
 * measured by the same suite: weights are prepared by the backend's {@link WeightLoader} from matrices in ggml's file
 * layout, activations are the backend's {@link Tensor}s, KV caches come from its {@link KvPool}. Besides time per
 * operation, each reports {@code weightGBps} (GB of weights in the file's layout, or of KV cache for attention, read
 * per second) and {@code gflops} (useful GFLOP/s) as JMH secondary metrics.
 *
 * <p>The layout of the weights is the backend's decision. The CPU backend interleaves the types that have a layout
 * for its decode kernels unless {@code -Dmoe4j.interleave=false}; the {@code interleaved} parameter sets that
 * property in each fork before the first weights are prepared, so both layouts can be compared in one run (other
 * backends ignore it).
 *
 * <p>Run: {@code bin/moe4j jmh} (all), or e.g. {@code bin/moe4j jmh 'matMul$' -p type=Q8_0,Q4_0 -p threads=2}; any JMH
 * option works ({@code bin/moe4j jmh -h}).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
// The flags bin/moe4j starts the engine with, so the kernels are measured as users run them (the C2 flag keeps the
// K-quant kernels' vectors unboxed; see bin/moe4j).
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:+UseParallelGC",
        "-XX:+UnlockDiagnosticVMOptions", "-XX:+IncrementalInlineForceCleanup"})
public class KernelBenchmarks {

    /** GB/s of weight bytes read and GFLOP/s, reported next to the operations per second (normalized like them). */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Rates {
        public double weightGBps;
        public double gflops;

        @Setup(Level.Iteration)
        public void clear() {
            weightGBps = 0;
            gflops = 0;
        }
    }

    /**
     * The value of {@code moe4j.interleave} this JVM prepared its first weights with: the CPU backend reads the
     * property once, so a second value in the same JVM (JMH without forks, {@code -f 0}) would not take effect.
     */
    private static String interleaveInThisJvm;

    /** Sets {@code -Dmoe4j.interleave} for the weights about to be prepared, or fails if this JVM already used the other value. */
    static synchronized void configureLayout(boolean interleaved) {
        String v = Boolean.toString(interleaved);
        if (interleaveInThisJvm == null) {
            System.setProperty("moe4j.interleave", v);
            interleaveInThisJvm = v;
        } else if (!interleaveInThisJvm.equals(v)) {
            throw new IllegalStateException("interleaved=" + v + " after interleaved=" + interleaveInThisJvm
                    + " in one JVM: the CPU backend reads -Dmoe4j.interleave once; run with forks (-f 1 or more)");
        }
    }

    /** Random weights of {@code type} in ggml's file layout: {@code rows} rows of {@code cols}, filling {@code dst}. */
    static void fillRandom(GgmlType type, int rows, int cols, SplittableRandom r, MemorySegment dst) {
        float[] f = new float[rows * cols];
        for (int i = 0; i < f.length; i++) f[i] = (float) (r.nextDouble() * 2 - 1) * 0.05f;
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment block = tmp.allocate(type.bytesFor(f.length), 64);
            BlockCodec.encode(type, f, 0, f.length, block, 0);
            for (long o = 0; o < dst.byteSize(); o += block.byteSize()) {
                MemorySegment.copy(block, 0, dst, o, Math.min(block.byteSize(), dst.byteSize() - o));
            }
        }
    }

    @State(Scope.Benchmark)
    public static class Weights {
        /** The backend ({@link Backend#open}). */
        @Param({"cpu"})
        public String device;
        @Param({"Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4", "F16", "BF16", "F32"})
        public String type;
        /** Tokens multiplied per read of the weights: 1 is decode, more is prefill or a batch. */
        @Param({"1", "64", "512"})
        public int tokens;
        /** CPU worker threads ({@link Threads}); 0: all cores. */
        @Param({"0"})
        public int threads;
        /**
         * {@code -Dmoe4j.interleave} in this fork: whether the CPU backend copies the matrices into their type's
         * interleaved layout, as a loaded model's are (types without one stay in the file's layout either way);
         * weightGBps counts the file's bytes in both cases.
         */
        @Param({"true", "false"})
        public boolean interleaved;
        /**
         * A weight type whose kernels run before the measured ones, for 1 and 2 tokens (a model mixes types, e.g.
         * Q4_K_M's Q4_K and Q6_K, and what ran first shapes how C2 compiles a kernel: see {@code BlockInterleaved.sum16});
         * "none": the measured type's kernels are the first to run in the JVM.
         */
        @Param({"none"})
        public String runFirst;
        /**
         * Whether up to 8 tokens stream 512 MB of distinct matrices from memory, as a model's decode does
         * ("memory"), or multiply one matrix again and again, which then stays in cache ("cache": the kernel's own
         * speed, without memory). Larger batches always use one matrix.
         */
        @Param({"memory"})
        public String source;
        /** Matrix shape: an OLMoE expert's gate projection. */
        public int rows = 1024, cols = 2048;

        Backend backend;
        Arena arena;
        Weight[] matrices;
        Tensor x, out;
        /** Bytes of all matrices in the file's layout: what one operation reads. */
        long bytes;

        @Setup
        public void setUp() {
            if (threads > 0) Threads.set(threads);
            configureLayout(interleaved);
            backend = Backend.open(device);
            GgmlType t = GgmlType.valueOf(type);
            long matrixBytes = rows * t.bytesFor(cols);
            // Decode and small batches (serving: a few tokens per expert): 512 MB of distinct matrices, so every
            // operation streams from memory as a model does; a larger batch reads its matrix once and is
            // compute-bound, one matrix is enough.
            if (!source.equals("memory") && !source.equals("cache")) throw new IllegalArgumentException("source: memory or cache, not " + source);
            int count = tokens <= 8 && source.equals("memory") ? (int) Math.max(1, (512L << 20) / matrixBytes) : 1;
            SplittableRandom r = new SplittableRandom(1);
            arena = Arena.ofShared();
            MemorySegment all = arena.allocate(matrixBytes * count, 64);
            fillRandom(t, 16, cols, r, all);
            WeightLoader loader = backend.loader(syntheticFile(t, all));
            matrices = new Weight[count];
            for (int i = 0; i < count; i++) {
                matrices[i] = loader.matrix(new WeightMatrix(all.asSlice(i * matrixBytes, matrixBytes), t, rows, cols), rows);
                bytes += matrices[i].fileBytes();
            }
            loader.finish();
            float[] xs = new float[Math.max(2, tokens) * cols];
            for (int i = 0; i < xs.length; i++) xs[i] = (float) r.nextGaussian();
            x = backend.upload(xs);
            out = backend.allocate((long) Math.max(2, tokens) * rows);
            if (!runFirst.equals("none")) runFirst(GgmlType.valueOf(runFirst), r);
        }

        /**
         * The matrices as the model file a backend prepares weights from. They are in no file, so a configured layout
         * cache is not used (the CPU backend warns that it cannot open one for this name).
         */
        private ModelSource syntheticFile(GgmlType t, MemorySegment data) {
            return new ModelSource(Path.of("KernelBenchmarks." + t + ".synthetic"), data, 0, arena);
        }

        /** A few thousand products of a matrix of another type, prepared as the measured ones are, with 1 and 2 tokens. */
        private void runFirst(GgmlType other, SplittableRandom r) {
            MemorySegment seg = arena.allocate(rows * other.bytesFor(cols), 64);
            fillRandom(other, rows, cols, r, seg);
            WeightLoader loader = backend.loader(syntheticFile(other, seg));
            Weight m = loader.matrix(new WeightMatrix(seg, other, rows, cols), rows);
            loader.finish();
            for (int i = 0; i < 3000; i++) backend.matmul(m, x, 0, 1 + (i & 1), out, 0);
        }

        @TearDown
        public void tearDown() {
            arena.close();
        }
    }

    /** All matrices once, each times {@code tokens} token rows. */
    @Benchmark
    public Tensor matMul(Weights w, Rates rates) {
        for (Weight m : w.matrices) w.backend.matmul(m, w.x, 0, w.tokens, w.out, 0);
        rates.weightGBps += w.bytes / 1e9;
        rates.gflops += 2.0 * w.rows * w.cols * w.tokens * w.matrices.length / 1e9;
        return w.out;
    }

    @State(Scope.Benchmark)
    public static class Cache {
        /** The backend ({@link Backend#open}). */
        @Param({"cpu"})
        public String device;
        @Param({"4096"})
        public int depth;
        @Param({"F16", "F32"})
        public String kvType;
        /** CPU worker threads ({@link Threads}); 0: all cores. */
        @Param({"0"})
        public int threads;
        /** OLMoE's attention: 16 heads of 128, no GQA; one layer. */
        public int heads = 16, kvHeads = 16, headDim = 128;

        Backend backend;
        KvStore keys, values;
        /** The arguments of one token's attention: its layer's stores and the positions it reads. */
        KvStore[] keyRows, valueRows;
        int[] first, last;
        Tensor q, out;

        @Setup
        public void setUp() {
            if (threads > 0) Threads.set(threads);
            backend = Backend.open(device);
            KvType t = KvType.valueOf(kvType);
            int pages = (depth + KvStore.PAGE - 1) / KvStore.PAGE;
            KvPool pool = backend.kvPool(2L * pages * KvPool.pageBytes(t, kvHeads, headDim));
            keys = pool.newStore(t, kvHeads, headDim);
            values = pool.newStore(t, kvHeads, headDim);
            if (!keys.reserve(0, depth) || !values.reserve(0, depth)) {
                throw new IllegalStateException("a KV pool of " + pool.budget() + " bytes cannot hold " + depth + " positions");
            }
            SplittableRandom r = new SplittableRandom(2);
            int width = kvHeads * headDim, chunk = Math.min(depth, KvStore.PAGE);
            float[] k = new float[chunk * width], v = new float[chunk * width];
            Tensor kt = backend.allocate(k.length), vt = backend.allocate(v.length);
            int[] positions = new int[chunk];
            KvStore[] ks = new KvStore[chunk], vs = new KvStore[chunk];
            Arrays.fill(ks, keys);
            Arrays.fill(vs, values);
            for (int p = 0; p < depth; p += chunk) {
                int m = Math.min(chunk, depth - p);
                for (int j = 0; j < m; j++) {
                    positions[j] = p + j;
                    for (int i = 0; i < width; i++) k[j * width + i] = (float) r.nextGaussian();
                    for (int i = 0; i < width; i++) v[j * width + i] = (float) r.nextGaussian();
                }
                backend.write(kt, 0, k, 0, m * width);
                backend.write(vt, 0, v, 0, m * width);
                backend.appendKv(m, kt, vt, width, ks, vs, positions);
            }
            float[] qs = new float[heads * headDim];
            for (int i = 0; i < qs.length; i++) qs[i] = (float) r.nextGaussian();
            q = backend.upload(qs);
            out = backend.allocate(qs.length);
            keyRows = new KvStore[]{keys};
            valueRows = new KvStore[]{values};
            first = new int[]{0};
            last = new int[]{depth - 1};
        }

        @TearDown
        public void tearDown() {
            keys.close();
            values.close();
        }
    }

    /** One decoded token's attention over {@code depth} cached positions (one layer). */
    @Benchmark
    public Tensor attentionDecode(Cache c, Rates rates) {
        c.backend.attention(1, c.q, c.heads * c.headDim, c.heads, c.kvHeads, c.headDim, c.keyRows, c.valueRows,
                c.first, c.last, 0.088f, null, c.out);
        rates.weightGBps += (c.keys.bytes() + c.values.bytes()) / 1e9;
        rates.gflops += 4.0 * c.heads * c.headDim * c.depth / 1e9;
        return c.out;
    }
}
