package io.moe4j.kernels;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

/**
 * Splits index ranges over a fixed pool of worker threads. The thread count defaults to the available cores and
 * can be set once at start-up ({@link #setThreads}).
 */
public final class Parallel {
    private static volatile int threads = Runtime.getRuntime().availableProcessors();
    private static volatile ExecutorService pool;

    private Parallel() {
    }

    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("thread count must be at least 1, got " + n);
        if (n != threads && pool != null) {
            pool.shutdown();
            pool = null;
        }
        threads = n;
    }

    public static int threads() {
        return threads;
    }

    private static ExecutorService pool() {
        ExecutorService p = pool;
        if (p == null) {
            synchronized (Parallel.class) {
                if (pool == null) {
                    pool = Executors.newFixedThreadPool(threads, r -> {
                        Thread t = new Thread(r, "moe4j-worker");
                        t.setDaemon(true);
                        return t;
                    });
                }
                p = pool;
            }
        }
        return p;
    }

    /** Runs {@code body.accept(i)} for i in [0, n), in contiguous chunks, one per thread. */
    public static void forRange(int n, IntConsumer body) {
        int t = Math.min(threads, n);
        if (t <= 1) {
            for (int i = 0; i < n; i++) body.accept(i);
            return;
        }
        Future<?>[] futures = new Future<?>[t - 1];
        for (int k = 1; k < t; k++) {
            int from = (int) ((long) n * k / t), to = (int) ((long) n * (k + 1) / t);
            futures[k - 1] = pool().submit(() -> {
                for (int i = from; i < to; i++) body.accept(i);
            });
        }
        int end = n / t;
        for (int i = 0; i < end; i++) body.accept(i);
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (Exception e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                if (c instanceof RuntimeException re) throw re;
                if (c instanceof Error err) throw err;
                throw new RuntimeException(c);
            }
        }
    }
}
