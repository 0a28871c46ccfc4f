package io.moe4j.bench;

import io.moe4j.kernels.Threads;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** What the machine can do: sustained read bandwidth (a STREAM-like probe), FP32 FMA peak, CPU name, peak RSS. */
public final class Machine {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    private Machine() {
    }

    /**
     * Sustained read bandwidth in GB/s (10^9 bytes) with the current thread count: every thread sums its contiguous
     * share of a buffer far larger than the caches with 256-bit loads into 8 independent accumulators (so the sum is
     * limited by memory, not by add latency), like STREAM's read-only kernels. Best of {@code reps} passes.
     */
    public static double readBandwidthGBs(long bytes, int reps) {
        try (BandwidthProbe p = new BandwidthProbe(bytes)) {
            return p.measure(reps);
        }
    }

    /**
     * The bandwidth probe's buffer, allocated (and every page touched) once, so that it can be measured repeatedly,
     * e.g. right before and after each timed decode: the bandwidth a shared machine gives varies over time (measured
     * here: from about 30 to 48 GB/s within minutes), so a roofline fraction must compare figures taken together.
     */
    public static final class BandwidthProbe implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        private final MemorySegment buf;
        private final long chunks;
        private final float[] sink = new float[Threads.count()];

        public BandwidthProbe(long bytes) {
            chunks = Math.max(1, bytes / CHUNK);
            buf = arena.allocate(chunks * CHUNK, 4096);
            long n = chunks * CHUNK / 4;
            Threads.split((int) (n / 1024), 1, (w, from, to) -> {
                for (long i = (long) from * 1024; i < (long) to * 1024; i++) buf.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i & 7) * 0.5f);
            });
            // Warm-up on part of the buffer, so that the timed passes run fully compiled code.
            for (int r = 0; r < 20; r++) {
                Threads.split((int) Math.min(chunks, 512), 1, (w, from, to) -> sink[w] += sumChunks(buf, from, to));
            }
        }

        /** Best of {@code reps} full passes, GB/s. */
        public double measure(int reps) {
            double best = 0;
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                Threads.split((int) chunks, 1, (w, from, to) -> sink[w] += sumChunks(buf, from, to));
                long t = System.nanoTime() - t0;
                best = Math.max(best, chunks * CHUNK / (t * 1e-9) / 1e9);
            }
            if (Float.isNaN(sink[0])) System.out.print(""); // keeps the sums alive
            return best;
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    private static final long CHUNK = 64 * 1024;

    /** Chunks [from, to) of 64 KiB: a call per chunk, so that the hot loop gets a normal (not on-stack) compilation. */
    private static float sumChunks(MemorySegment s, int from, int to) {
        float acc = 0;
        for (long c = from; c < to; c++) acc += sum(s, c * CHUNK, (c + 1) * CHUNK);
        return acc;
    }

    private static float sum(MemorySegment s, long from, long to) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        for (long o = from; o < to; o += 256) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, s, o, le));
            a1 = a1.add(FloatVector.fromMemorySegment(F, s, o + 32, le));
            a2 = a2.add(FloatVector.fromMemorySegment(F, s, o + 64, le));
            a3 = a3.add(FloatVector.fromMemorySegment(F, s, o + 96, le));
            a4 = a4.add(FloatVector.fromMemorySegment(F, s, o + 128, le));
            a5 = a5.add(FloatVector.fromMemorySegment(F, s, o + 160, le));
            a6 = a6.add(FloatVector.fromMemorySegment(F, s, o + 192, le));
            a7 = a7.add(FloatVector.fromMemorySegment(F, s, o + 224, le));
        }
        return a0.add(a1).add(a2.add(a3)).add(a4.add(a5).add(a6.add(a7))).lane(0);
    }

    /**
     * Measured FP32 FMA throughput in GFLOP/s with the current thread count: each thread runs 12 independent chains
     * of 256-bit FMAs (enough to cover the FMA latency on two pipes) from registers. Best of {@code reps}.
     */
    public static double fmaPeakGflops(int reps) {
        int t = Threads.count();
        long iters = 20_000_000;
        double best = 0;
        float[] sink = new float[t];
        for (int r = 0; r < 2000; r++) sink[0] += fmaLoop(1000); // compile fmaLoop before timing
        for (int r = 0; r < reps; r++) {
            long t0 = System.nanoTime();
            Threads.split(t, 1, (w, from, to) -> {
                for (int i = from; i < to; i++) sink[w] += fmaLoop(iters);
            });
            long ns = System.nanoTime() - t0;
            best = Math.max(best, t * iters * 12 * 8 * 2 / (double) ns);
        }
        if (Float.isNaN(sink[0])) System.out.print("");
        return best;
    }

    private static float fmaLoop(long iters) {
        FloatVector m = FloatVector.broadcast(F, 0.999999f), c = FloatVector.broadcast(F, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(F, 1f), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3), a4 = a0.add(4),
                a5 = a0.add(5), a6 = a0.add(6), a7 = a0.add(7), a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10), a11 = a0.add(11);
        for (long i = 0; i < iters; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11).lane(0);
    }

    /** The nominal FP32 FMA peak as the issue defines it: cores × 2 FMA units × 8 lanes × 2 flops × clock. */
    public static double nominalFmaPeakGflops(int threads) {
        return threads * 2 * 8 * 2 * clockGHz();
    }

    /** The clock /proc/cpuinfo reports (GHz), 0 when unknown. */
    public static double clockGHz() {
        return cpuinfo("cpu MHz").map(s -> Double.parseDouble(s) / 1000).orElse(0.0);
    }

    /**
     * The CPU's model name, with its family and model numbers: virtual machines often report a bare "AMD EPYC",
     * which may be a Zen 4 (family 25) or a Zen 5 (family 26), and their figures differ.
     */
    public static String cpuName() {
        String name = cpuinfo("model name").orElse(System.getProperty("os.arch"));
        var family = cpuinfo("cpu family");
        var model = cpuinfo("model");
        return family.isPresent() && model.isPresent() ? name + " (family " + family.get() + ", model " + model.get() + ")" : name;
    }

    public static String cpuFlagsSummary() {
        String flags = cpuinfo("flags").orElse("");
        StringBuilder b = new StringBuilder();
        for (String f : new String[]{"avx2", "fma", "avx512f", "f16c"}) {
            if (Arrays.asList(flags.split(" ")).contains(f)) b.append(b.isEmpty() ? "" : " ").append(f);
        }
        return b.toString();
    }

    private static java.util.Optional<String> cpuinfo(String key) {
        return procField(Path.of("/proc/cpuinfo"), key);
    }

    /** The value of the first "key: value" line of a /proc file (key compared trimmed), empty when unknown. */
    private static java.util.Optional<String> procField(Path file, String key) {
        try {
            for (String line : Files.readAllLines(file)) {
                int c = line.indexOf(':');
                if (c > 0 && line.substring(0, c).trim().equals(key)) return java.util.Optional.of(line.substring(c + 1).trim());
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return java.util.Optional.empty();
    }

    /** Peak resident set size in bytes (VmHWM; mapped weight pages that were touched count), -1 when unknown. */
    public static long peakRssBytes() {
        return kibField(Path.of("/proc/self/status"), "VmHWM");
    }

    public static long totalMemoryBytes() {
        return kibField(Path.of("/proc/meminfo"), "MemTotal");
    }

    /** A "key: N kB" field of a /proc file in bytes, -1 when unknown. */
    private static long kibField(Path file, String key) {
        try {
            return procField(file, key).map(v -> Long.parseLong(v.replaceAll("[^0-9]", "")) * 1024).orElse(-1L);
        } catch (RuntimeException e) {
            return -1;
        }
    }
}
