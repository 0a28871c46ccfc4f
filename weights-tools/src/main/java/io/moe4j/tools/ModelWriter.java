package io.moe4j.tools;

import io.moe4j.ByteSize;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes a GGUF file from {@link TensorPlan}s, streaming: float rows are produced and encoded in chunks of about
 * {@link #CHUNK_ELEMENTS} elements by a pool of worker threads, a bounded number ahead of the writer, and written
 * in order, so memory stays at a few chunks per thread whatever the model size. Chunk boundaries depend only on the
 * tensor's shape, so the bytes do not depend on the thread count.
 *
 * <p>The file appears under its final name only when complete ({@link GgufWriter} writes a temporary file and
 * renames it); any failure leaves no partial file and ends in a {@link Moe4jException} with a clear message.
 */
public final class ModelWriter {
    /** Target elements per encoded chunk (whole rows; a single row may be longer). */
    public static final int CHUNK_ELEMENTS = 1 << 20;

    /** What was written. */
    public record Result(Path path, int tensors, long bytes, double seconds, String summary) {
    }

    private ModelWriter() {
    }

    public static int defaultThreads() {
        return Math.max(1, Runtime.getRuntime().availableProcessors());
    }

    /** Rows per chunk for rows of {@code rowElements}. */
    public static int rowsPerChunk(long rowElements) {
        return (int) Math.max(1, CHUNK_ELEMENTS / rowElements);
    }

    /**
     * Writes {@code out} with this metadata (in map order) and these tensors (in list order), reporting to
     * {@code progress}; {@code what} names the job in the summary line.
     */
    public static Result write(Path out, Map<String, GgufValue> metadata, List<TensorPlan> tensors, Progress progress,
                               int threads, String what) {
        long total = 0;
        for (TensorPlan t : tensors) {
            if (t.dims()[0] % t.type().blockSize != 0) {
                throw new ModelFormatException(out + ": tensor " + t + ": the row length " + t.dims()[0]
                        + " is not a multiple of the block size " + t.type().blockSize + " of " + t.type());
            }
            if (t.source() instanceof TensorPlan.Bytes b && b.byteSize() != t.byteSize()) {
                throw new ModelFormatException(out + ": tensor " + t + " needs " + t.byteSize() + " bytes, its source has "
                        + b.byteSize());
            }
            if (t.source() instanceof TensorPlan.Rows && !Codec.canEncode(t.type())) {
                throw new ModelFormatException(out + ": tensor " + t + ": cannot encode weights as " + t.type());
            }
            total += t.byteSize();
        }
        checkSpace(out, total);
        progress.setTotal(total);
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads), r -> {
            Thread th = new Thread(r, "moe4j-writer");
            th.setDaemon(true);
            return th;
        });
        Pipeline pipe = new Pipeline(tensors, pool, 2 * Math.max(1, threads) + 2);
        try (GgufWriter w = GgufWriter.create(out, metadata)) {
            for (TensorPlan t : tensors) w.addTensor(t.name(), t.type(), t.dims());
            for (int i = 0; i < tensors.size(); i++) {
                TensorPlan t = tensors.get(i);
                progress.item(t.name());
                switch (t.source()) {
                    case TensorPlan.Bytes b -> {
                        if (b.parts().size() == 1) {
                            w.writeData(t.name(), b.parts().getFirst());
                            progress.advance(t.byteSize());
                        } else {
                            w.writeData(t.name(), o -> {
                                for (MemorySegment part : b.parts()) {
                                    o.write(part);
                                    progress.advance(part.byteSize());
                                }
                            });
                        }
                    }
                    case TensorPlan.Rows r -> writeChunks(w, pipe, progress, t, i);
                    case TensorPlan.RawRows r -> writeChunks(w, pipe, progress, t, i);
                }
            }
            Path p = w.finish();
            double s = progress.seconds();
            String summary = progress.finish(progress.summary(what + " " + p, tensors.size(), total));
            return new Result(p, tensors.size(), total, s, summary);
        } finally {
            pool.shutdownNow();
        }
    }

    private static void writeChunks(GgufWriter w, Pipeline pipe, Progress progress, TensorPlan t, int index) {
        w.writeData(t.name(), o -> {
            for (long c = 0, n = pipe.chunks(index); c < n; c++) {
                byte[] bytes = pipe.next(index);
                o.write(bytes);
                progress.advance(bytes.length);
            }
        });
    }

    private static void checkSpace(Path out, long bytes) {
        Path dir = out.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new Moe4jException("cannot write " + out + ": folder " + dir + " does not exist");
        }
        try {
            long free = Files.getFileStore(dir).getUsableSpace();
            if (free > 0 && free < bytes) {
                throw new Moe4jException("not enough disk space for " + out + ": it needs " + ByteSize.format(bytes) + " ("
                        + bytes + " bytes), only " + ByteSize.format(free) + " are free in " + dir);
            }
        } catch (IOException e) {
            // unknown free space: the write itself will report a full disk
        }
    }

    /** Encoded chunks of every row-produced tensor, in file order, computed a bounded distance ahead. */
    private static final class Pipeline {
        private final List<TensorPlan> tensors;
        private final ExecutorService pool;
        private final int lookahead;
        private final ArrayDeque<Future<byte[]>> inFlight = new ArrayDeque<>();
        private final ArrayDeque<Integer> inFlightTensor = new ArrayDeque<>();
        private int subTensor = -1; // tensor whose chunks are being submitted
        private long subChunk;      // next chunk of it to submit
        private final ThreadLocal<float[]> scratch = new ThreadLocal<>();

        Pipeline(List<TensorPlan> tensors, ExecutorService pool, int lookahead) {
            this.tensors = tensors;
            this.pool = pool;
            this.lookahead = lookahead;
            advanceSubmitter();
        }

        long chunks(int tensor) {
            TensorPlan t = tensors.get(tensor);
            int per = rowsPerChunk(t.dims()[0]);
            return (t.rowCount() + per - 1) / per;
        }

        private static boolean chunked(TensorPlan t) {
            return t.source() instanceof TensorPlan.Rows || t.source() instanceof TensorPlan.RawRows;
        }

        private void advanceSubmitter() {
            while (true) {
                if (subTensor >= 0 && subTensor < tensors.size() && chunked(tensors.get(subTensor))
                        && subChunk < chunks(subTensor)) {
                    return;
                }
                subTensor++;
                subChunk = 0;
                if (subTensor >= tensors.size()) return;
            }
        }

        private void fill() {
            while (inFlight.size() < lookahead && subTensor < tensors.size()) {
                TensorPlan t = tensors.get(subTensor);
                int per = rowsPerChunk(t.dims()[0]);
                long first = subChunk * per;
                int n = (int) Math.min(per, t.rowCount() - first);
                inFlight.add(pool.submit(() -> encode(t, first, n)));
                inFlightTensor.add(subTensor);
                subChunk++;
                advanceSubmitter();
            }
        }

        private byte[] encode(TensorPlan t, long first, int n) {
            long elements = n * t.dims()[0];
            if (elements > Integer.MAX_VALUE - 16) throw new ModelFormatException("tensor " + t + ": a row is too long");
            if (t.source() instanceof TensorPlan.RawRows raw) {
                byte[] out = new byte[Math.toIntExact(t.type().bytesFor(elements))];
                raw.fill(first, n, MemorySegment.ofArray(out));
                return out;
            }
            TensorPlan.Rows rows = (TensorPlan.Rows) t.source();
            float[] buf = scratch.get();
            if (buf == null || buf.length < elements) {
                buf = new float[(int) Math.max(elements, CHUNK_ELEMENTS)];
                scratch.set(buf);
            }
            rows.fill(first, n, buf);
            byte[] out = new byte[Math.toIntExact(t.type().bytesFor(elements))];
            Codec.encode(t.type(), buf, (int) elements, MemorySegment.ofArray(out), 0);
            return out;
        }

        byte[] next(int tensor) throws IOException {
            fill();
            Future<byte[]> f = inFlight.poll();
            Integer owner = inFlightTensor.poll();
            if (f == null || owner != tensor) throw new IllegalStateException("chunk pipeline out of step at tensor " + tensor);
            try {
                byte[] b = f.get();
                fill();
                return b;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Moe4jException("interrupted while producing tensor '" + tensors.get(tensor).name() + "'", e);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof RuntimeException re) throw re;
                if (c instanceof Error err) throw err;
                throw new Moe4jException("producing tensor '" + tensors.get(tensor).name() + "' failed: " + c, c);
            }
        }
    }
}
