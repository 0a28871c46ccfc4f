package io.moe4j.bench.jmh;

import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.cpu.MatMul;
import io.moe4j.kernels.cpu.Parallel;
import io.moe4j.kernels.WeightMatrix;
import io.moe4j.kernels.ops.Attention;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.quant.BlockFormats;
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
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmarks of the kernels, per weight type: matrix × vector (decode) over more weight memory than the caches
 * hold, matrix × matrix (prefill, batches) and attention over a 4k F16 cache. Besides time per operation, each
 * reports {@code weightGBps} (GB of weights, or of KV cache for attention, read per second) and {@code gflops}
 * (useful GFLOP/s) as JMH secondary metrics.
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

    @State(Scope.Benchmark)
    public static class Weights {
        @Param({"Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4", "F16", "BF16", "F32"})
        public String type;
        /** Tokens multiplied per read of the weights: 1 is decode, more is prefill or a batch. */
        @Param({"1", "64", "512"})
        public int tokens;
        @Param({"0"})
        public int threads;
        /**
         * Whether the matrices are copied into their type's interleaved layout, as a loaded model's are (types
         * without one stay in the file's layout either way); weightGBps counts the file's bytes in both cases.
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

        Arena arena;
        WeightMatrix[] matrices;
        float[] x, out;
        long bytes;

        @Setup
        public void setUp() {
            if (threads > 0) Parallel.setThreads(threads);
            GgmlType t = GgmlType.valueOf(type);
            long matrixBytes = rows * t.bytesFor(cols);
            // Decode and small batches (serving: a few tokens per expert): 512 MB of distinct matrices, so every
            // operation streams from memory as a model does; a larger batch reads its matrix once and is
            // compute-bound, one matrix is enough.
            if (!source.equals("memory") && !source.equals("cache")) throw new IllegalArgumentException("source: memory or cache, not " + source);
            int count = tokens <= 8 && source.equals("memory") ? (int) Math.max(1, (512L << 20) / matrixBytes) : 1;
            SplittableRandom r = new SplittableRandom(1);
            float[] f = new float[cols * 16];
            for (int i = 0; i < f.length; i++) f[i] = (float) (r.nextDouble() * 2 - 1) * 0.05f;
            byte[] pool = BlockFormats.quantize(t, f, 0, f.length);
            arena = Arena.ofShared();
            MemorySegment all = arena.allocate(matrixBytes * count, 64);
            for (long o = 0; o < all.byteSize(); o += pool.length) {
                MemorySegment.copy(pool, 0, all, ValueLayout.JAVA_BYTE, o, (int) Math.min(pool.length, all.byteSize() - o));
            }
            matrices = new WeightMatrix[count];
            for (int i = 0; i < count; i++) {
                matrices[i] = new WeightMatrix(all.asSlice(i * matrixBytes, matrixBytes), t, rows, cols);
                if (interleaved) matrices[i] = matrices[i].interleave(arena);
            }
            x = new float[Math.max(2, tokens) * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            out = new float[Math.max(2, tokens) * rows];
            bytes = matrixBytes;
            if (!runFirst.equals("none")) runFirst(GgmlType.valueOf(runFirst), r);
        }

        /** A few thousand products of a matrix of another type, interleaved as the measured ones are, with 1 and 2 tokens. */
        private void runFirst(GgmlType other, SplittableRandom r) {
            float[] f = new float[rows * cols];
            for (int i = 0; i < f.length; i++) f[i] = (float) (r.nextDouble() * 2 - 1) * 0.05f;
            byte[] q = BlockFormats.quantize(other, f, 0, f.length);
            MemorySegment seg = arena.allocate(q.length, 64);
            MemorySegment.copy(q, 0, seg, ValueLayout.JAVA_BYTE, 0, q.length);
            WeightMatrix m = new WeightMatrix(seg, other, rows, cols);
            if (interleaved) m = m.interleave(arena);
            for (int i = 0; i < 3000; i++) MatMul.mul(m, x, 0, 1 + (i & 1), out, 0);
        }

        @TearDown
        public void tearDown() {
            arena.close();
        }
    }

    /** All matrices once, each times {@code tokens} token rows. */
    @Benchmark
    public float matMul(Weights w, Rates rates) {
        for (WeightMatrix m : w.matrices) MatMul.mul(m, w.x, 0, w.tokens, w.out, 0);
        rates.weightGBps += w.bytes * w.matrices.length / 1e9;
        rates.gflops += 2.0 * w.rows * w.cols * w.tokens * w.matrices.length / 1e9;
        return w.out[0];
    }

    @State(Scope.Benchmark)
    public static class Cache {
        @Param({"4096"})
        public int depth;
        @Param({"F16", "F32"})
        public String kvType;
        @Param({"0"})
        public int threads;
        /** OLMoE's attention: 16 heads of 128, no GQA; one layer. */
        public int heads = 16, kvHeads = 16, headDim = 128;
        KvBuffer keys, values;
        float[] q, out;

        @Setup
        public void setUp() {
            if (threads > 0) Parallel.setThreads(threads);
            KvType t = KvType.valueOf(kvType);
            keys = KvBuffer.create(t, kvHeads, headDim);
            values = KvBuffer.create(t, kvHeads, headDim);
            SplittableRandom r = new SplittableRandom(2);
            float[] row = new float[kvHeads * headDim];
            for (int p = 0; p < depth; p++) {
                for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
                keys.write(p, row, 0);
                for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
                values.write(p, row, 0);
            }
            q = new float[heads * headDim];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            out = new float[q.length];
        }
    }

    /** One decoded token's attention over {@code depth} cached positions (one layer). */
    @Benchmark
    public float attentionDecode(Cache c, Rates rates) {
        Attention.attend(1, c.q, c.q.length, c.heads, c.kvHeads, c.headDim, new KvBuffer[]{c.keys}, new KvBuffer[]{c.values},
                new int[]{0}, new int[]{c.depth - 1}, 0.088f, null, c.out);
        rates.weightGBps += (c.keys.bytes() + c.values.bytes()) / 1e9;
        rates.gflops += 4.0 * c.heads * c.headDim * c.depth / 1e9;
        return c.out[0];
    }
}
