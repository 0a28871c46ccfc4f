package io.moe4j.kernels.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * A persistent pool of worker threads for the per-token path: {@link #threads()} - 1 daemon workers plus the
 * calling thread, started once. A dispatch publishes the job with one volatile write; workers spin on it (then park
 * after 50 microseconds without work, so that an idle engine burns no CPU). After its own part the caller runs
 * the parts of workers that have not started yet (each part is claimed once, by its worker or by the caller) and
 * spins until the started ones finish: no ForkJoin, no futures, no allocation beyond the job and dispatch objects.
 *
 * <p>The thread count defaults to the available cores and can be changed ({@link #setThreads}). A dispatch issued
 * while the pool is busy (from inside a task, or from a second thread) runs on the calling thread alone; results never
 * depend on how work is split, because every kernel computes each output element in a fixed order.
 */
public final class Parallel {

    /** Work on part of an index range, run by worker {@code worker} (0 is the calling thread). */
    @FunctionalInterface
    public interface RangeTask {
        void run(int worker, int from, int to);
    }

    private static volatile int threads = Runtime.getRuntime().availableProcessors();
    private static volatile Pool pool;

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

    private static Pool pool() {
        Pool p = pool;
        if (p != null) return p;
        synchronized (Parallel.class) {
            if (pool == null) pool = new Pool(threads);
            return pool;
        }
    }

    /** Runs {@code body.accept(i)} for i in [0, n), in contiguous chunks, one per thread. */
    public static void forRange(int n, IntConsumer body) {
        split(n, 1, (w, from, to) -> {
            for (int i = from; i < to; i++) body.accept(i);
        });
    }

    /**
     * Splits [0, n) into one contiguous part per thread, part boundaries on multiples of {@code grain} (the last part
     * takes the remainder), and runs them in parallel.
     */
    public static void split(int n, int grain, RangeTask task) {
        int units = (n + grain - 1) / grain;
        if (ranOnCaller(n, units, task)) return;
        int parts = Math.min(threads, units);
        run(parts, new Job() {
            @Override
            void work(int worker, int parts) {
                if (worker >= parts) return;
                int from = (int) ((long) units * worker / parts) * grain;
                int to = Math.min(n, (int) ((long) units * (worker + 1) / parts) * grain);
                if (from < to) task.run(worker, from, to);
            }
        });
    }

    /**
     * Runs [0, n) in chunks of {@code chunk} indices (the last one shorter) handed out to the threads as they become
     * free: for work whose cost varies, or when a core may be shared with other programs.
     */
    public static void dynamic(int n, int chunk, RangeTask task) {
        int chunks = (n + chunk - 1) / chunk;
        if (ranOnCaller(n, chunks, task)) return;
        AtomicInteger next = new AtomicInteger();
        run(Math.min(threads, chunks), new Job() {
            @Override
            void work(int worker, int parts) {
                for (int c; (c = next.getAndIncrement()) < chunks; ) {
                    task.run(worker, c * chunk, Math.min(n, (c + 1) * chunk));
                }
            }
        });
    }

    /**
     * Runs [0, n) in chunks of {@code chunk} indices, like {@link #dynamic}, but each thread starts on its own
     * contiguous share of the range (as {@link #split} gives it) and takes that share's chunks in increasing order; a
     * thread that runs out of work takes chunks from the end of the share of another thread. For memory-bound work
     * that reads memory in index order (the decode row kernels): each thread reads one sequential stream, which the
     * hardware prefetcher follows, where chunks handed out alternately make every thread jump ahead after each chunk
     * (measured on 2 cores: Q4_0 matrix × vector at 13 GB/s with 16-row chunks handed out alternately, 26 GB/s
     * with contiguous shares) and still balances the load when a core is slowed by another program.
     */
    public static void contiguous(int n, int chunk, RangeTask task) {
        int chunks = (n + chunk - 1) / chunk;
        if (ranOnCaller(n, chunks, task)) return;
        int parts = Math.min(threads, chunks);
        // Per share: (next chunk from the front) << 32 | (end of the chunks not yet taken), 16 longs apart
        // (own cache lines).
        AtomicLongArray shares = new AtomicLongArray(parts * STRIDE);
        for (int w = 0; w < parts; w++) {
            long from = (long) chunks * w / parts, to = (long) chunks * (w + 1) / parts;
            shares.set(w * STRIDE, from << 32 | to);
        }
        run(parts, new Job() {
            @Override
            void work(int worker, int parts) {
                if (worker >= parts) return;
                int i = worker * STRIDE;
                for (long v; ; ) { // own share, from the front
                    v = shares.get(i);
                    int f = (int) (v >>> 32), b = (int) v;
                    if (f >= b) break;
                    if (shares.compareAndSet(i, v, v + (1L << 32))) task.run(worker, f * chunk, Math.min(n, (f + 1) * chunk));
                }
                for (int k = 1; k < parts; k++) { // then the others', from the back
                    int j = ((worker + k) % parts) * STRIDE;
                    for (long v; ; ) {
                        v = shares.get(j);
                        int f = (int) (v >>> 32), b = (int) v;
                        if (f >= b) break;
                        if (shares.compareAndSet(j, v, v - 1)) task.run(worker, (b - 1) * chunk, Math.min(n, b * chunk));
                    }
                }
            }
        });
    }

    private static final int STRIDE = 16;

    /** Runs [0, n) on the calling thread when there is nothing to split (no work, one thread, one chunk). */
    private static boolean ranOnCaller(int n, int chunks, RangeTask task) {
        if (n <= 0) return true;
        if (threads > 1 && chunks > 1) return false;
        task.run(0, 0, n);
        return true;
    }

    /** A chunk size that gives each of the threads about {@code perThread} chunks of [0, n), a multiple of {@code grain}. */
    public static int chunkFor(int n, int perThread, int grain) {
        int c = n / Math.max(1, threads * perThread);
        return Math.max(grain, (c + grain - 1) / grain * grain);
    }

    private static void run(int parts, Job job) {
        Pool p = pool();
        if (!p.tryRun(job, parts)) {
            for (int w = 0; w < parts; w++) job.work(w, parts);
        }
    }

    /** One dispatch: {@code work(w, parts)} is called once for every worker w in [0, parts). */
    private abstract static class Job {
        abstract void work(int worker, int parts);
    }

    private static final class Pool {
        /**
         * How long an idle worker spins before it parks. Short, because a spinning worker takes a core from the
         * server's request threads, and a parked one costs little: the caller does the parts of workers that have not
         * started. Measured (serve --bench, 2 cores, 8 streams): 2 ms 2070 tok/s, 100 us 2600, 20 us 2740; decode of
         * the OLMoE shape the same within noise. {@code -Dmoe4j.spinMicros=N} overrides it.
         */
        private static final long SPIN_NANOS = 1000L * Long.getLong("moe4j.spinMicros", 50);

        /**
         * One dispatch. Each worker takes part only after claiming it: {@code claims[w]} goes from below 2·epoch to
         * 2·epoch (the worker joined) or 2·epoch + 1 (the caller closed it first and runs that worker's part itself).
         * So the caller never waits for a worker that has not started, e.g. one the OS has not scheduled yet because
         * request threads of the server fill the cores, or one still waking from park.
         */
        private record Dispatch(long epoch, Job job, int parts, AtomicInteger pending) {
        }

        private final Worker[] workers;
        private final AtomicLongArray claims;
        private final AtomicReference<Throwable> failure = new AtomicReference<>();
        private final java.util.concurrent.atomic.AtomicBoolean busy = new java.util.concurrent.atomic.AtomicBoolean();
        private volatile Dispatch current = new Dispatch(0, null, 0, new AtomicInteger());
        private long epoch;
        private volatile boolean stopped;

        Pool(int threads) {
            workers = new Worker[threads - 1];
            claims = new AtomicLongArray(Math.max(1, (threads - 1) * STRIDE));
            for (int i = 0; i < workers.length; i++) {
                workers[i] = new Worker(i + 1);
                workers[i].start();
            }
        }

        /** Claims worker {@code w}'s part of dispatch {@code d} for {@code value} (joined or closed); false if decided. */
        private boolean claim(int w, Dispatch d, long value) {
            int i = (w - 1) * STRIDE;
            for (long c; (c = claims.get(i)) < 2 * d.epoch; ) {
                if (claims.compareAndSet(i, c, value)) return true;
            }
            return false;
        }

        boolean tryRun(Job j, int nParts) {
            if (workers.length == 0 || Thread.currentThread() instanceof Worker || !busy.compareAndSet(false, true)) {
                return false;
            }
            try {
                Dispatch d = new Dispatch(++epoch, j, nParts, new AtomicInteger(workers.length));
                current = d; // publishes the dispatch
                for (Worker w : workers) {
                    if (w.sleeping) LockSupport.unpark(w);
                }
                Throwable own = null;
                try {
                    j.work(0, nParts);
                    // Parts of workers that have not started yet: done here, not waited for.
                    for (Worker w : workers) {
                        if (claim(w.id, d, 2 * d.epoch + 1)) {
                            d.pending.decrementAndGet();
                            if (w.id < nParts) j.work(w.id, nParts);
                        }
                    }
                } catch (Throwable t) {
                    own = t;
                    for (Worker w : workers) {
                        if (claim(w.id, d, 2 * d.epoch + 1)) d.pending.decrementAndGet();
                    }
                }
                while (d.pending.get() != 0) Thread.onSpinWait();
                Throwable t = own != null ? own : failure.getAndSet(null);
                failure.set(null);
                if (t instanceof RuntimeException re) throw re;
                if (t instanceof Error e) throw e;
                if (t != null) throw new RuntimeException(t);
                return true;
            } finally {
                busy.set(false);
            }
        }

        void shutdown() {
            stopped = true;
            current = new Dispatch(Long.MAX_VALUE / 4, null, 0, new AtomicInteger());
            for (Worker w : workers) LockSupport.unpark(w);
        }

        private final class Worker extends Thread {
            private final int id;
            volatile boolean sleeping;

            Worker(int id) {
                super("moe4j-worker-" + id);
                this.id = id;
                setDaemon(true);
            }

            @Override
            public void run() {
                long seen = 0;
                while (true) {
                    Dispatch d = current;
                    if (d.epoch == seen) {
                        long spinStart = System.nanoTime();
                        int spins = 0;
                        while ((d = current).epoch == seen) {
                            if ((++spins & 1023) == 0 && System.nanoTime() - spinStart > SPIN_NANOS) {
                                sleeping = true;
                                if ((d = current).epoch == seen) LockSupport.park(this);
                                sleeping = false;
                                spinStart = System.nanoTime();
                            } else {
                                Thread.onSpinWait();
                            }
                        }
                    }
                    seen = d.epoch;
                    if (stopped) return;
                    if (!claim(id, d, 2 * d.epoch)) continue; // the caller did this part already
                    try {
                        if (id < d.parts) d.job.work(id, d.parts);
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    } finally {
                        d.pending.decrementAndGet();
                    }
                }
            }
        }
    }
}
