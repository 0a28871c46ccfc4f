package io.moe4j.kernels;

import io.moe4j.kernels.cpu.Parallel;

/**
 * The CPU backend's worker threads: how many there are, and a way for measurements outside this module (the
 * machine's memory bandwidth in the bench) to run on the same threads as the kernels.
 */
public final class Threads {
    private Threads() {
    }

    /** Sets the number of worker threads (the calling thread counts as one); at least 1. */
    public static void set(int n) {
        Parallel.setThreads(n);
    }

    /** The number of worker threads. */
    public static int count() {
        return Parallel.threads();
    }

    /** A part of a split range: worker index and the half-open range {@code [from, to)}. */
    @FunctionalInterface
    public interface Part {
        void run(int worker, int from, int to);
    }

    /** Splits {@code [0, n)} into one contiguous part per worker (parts of at least {@code grain}) and waits for all. */
    public static void split(int n, int grain, Part part) {
        Parallel.split(n, grain, part::run);
    }
}
