package io.moe4j.compress;

import io.moe4j.Model;
import io.moe4j.Moe4jException;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32;

/**
 * Lossless compression with a language model: the input is spelled as tokens ({@link ByteSpelling}), cut into
 * independent chunks of at most {@link Options#chunkTokens} tokens, and each token is range-coded with the
 * probability the model gave it after the chunk's earlier tokens (BOS first, where the vocabulary has one).
 *
 * <p>The compressor evaluates each chunk in batches of many tokens, the decompressor one token at a time: this is
 * lossless only because the engine's logits are bit-identical either way (and whatever else shares the batch), and
 * because {@link Frequencies} turns them into integers in strict scalar arithmetic. So both sides need the same moe4j
 * version, model file (checked by SHA-256) and CPU backend. Chunks are evaluated {@link Options#lanes} at a time in
 * one forward pass per step (each weight matrix is read once for all of them) by {@link Options#jobs} threads.
 */
public final class ModelCompressor {
    /** Default chunk length in tokens (capped by the model's context). */
    public static final int DEFAULT_CHUNK_TOKENS = 1024;
    /** Logits of one forward pass are kept below this many floats (64 MB), whatever the batch asks for. */
    private static final long MAX_LOGITS = 16L << 20;
    /** Pieces the input is tokenized in: cut after a line break once this long, hard cut at 16 times this. */
    private static final int PIECE = 4096;

    /**
     * @param chunkTokens tokens per independent chunk: longer chunks give the model more context, shorter ones more
     *                    parallelism and less memory
     * @param batch       tokens of a chunk the compressor evaluates per forward pass
     * @param lanes       chunks evaluated together in one forward pass
     * @param jobs        threads that each evaluate a group of {@code lanes} chunks
     */
    public record Options(int chunkTokens, int batch, int lanes, int jobs) {
        public Options {
            if (chunkTokens < 1) throw new IllegalArgumentException("--chunk-tokens must be at least 1, got " + chunkTokens);
            if (batch < 1) throw new IllegalArgumentException("--batch must be at least 1, got " + batch);
            if (lanes < 1) throw new IllegalArgumentException("--lanes must be at least 1, got " + lanes);
            if (jobs < 1) throw new IllegalArgumentException("--jobs must be at least 1, got " + jobs);
        }
    }

    /** What a run did: sizes in bytes, model positions coded, chunks, wall time. */
    public record Stats(long originalBytes, long compressedBytes, long tokens, long chunks, double seconds) {
        public double bitsPerByte() {
            return originalBytes == 0 ? 0 : 8.0 * compressedBytes / originalBytes;
        }

        /** Original megabytes (10^6 bytes) per second. */
        public double megabytesPerSecond() {
            return originalBytes / 1e6 / Math.max(seconds, 1e-9);
        }
    }

    /** Told how many original bytes are done out of how many. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (done, total) -> { };

        void update(long done, long total);
    }

    private final Model model;
    private final Transformer tf;
    private final ByteSpelling spelling;
    private final String moe4jVersion;
    private final int vocab;
    private final int bos;
    private byte[] sha256;

    /** {@code moe4jVersion} is written into compressed files and required of them when decompressing. */
    public ModelCompressor(Model model, String moe4jVersion) {
        this.model = model;
        this.tf = model.transformer();
        this.spelling = new ByteSpelling(model.tokenizer());
        this.moe4jVersion = moe4jVersion;
        this.vocab = tf.vocabSize();
        if (model.tokenizer().vocabSize() != vocab) {
            throw new Moe4jException(model.path() + ": the tokenizer has " + model.tokenizer().vocabSize()
                    + " tokens but the output layer " + vocab);
        }
        this.bos = model.tokenizer().bos();
    }

    /** The longest chunk the model's context holds (the BOS token takes one position). */
    public int maxChunkTokens() {
        return model.config().contextLength() - (bos >= 0 ? 1 : 0);
    }

    public int defaultChunkTokens() {
        return Math.min(DEFAULT_CHUNK_TOKENS, maxChunkTokens());
    }

    public Options defaultOptions() {
        return new Options(defaultChunkTokens(), 256, 1, Runtime.getRuntime().availableProcessors());
    }

    // ---- compression ---------------------------------------------------------------------------------------------

    /** A chunk to code: its units, and the length and CRC-32 of the bytes they stand for. */
    private record Chunk(int[] units, int bytes, int crc) {
    }

    public Stats compress(Path in, Path out, Options o, Progress progress) {
        if (o.chunkTokens() > maxChunkTokens()) {
            throw new IllegalArgumentException("--chunk-tokens " + o.chunkTokens() + " does not fit the model's context of "
                    + model.config().contextLength() + " tokens (at most " + maxChunkTokens() + ")");
        }
        long t0 = System.nanoTime();
        long length;
        int crc;
        try {
            length = Files.size(in);
            crc = crc32(in);
        } catch (IOException e) {
            throw ioError("cannot read " + in, e);
        }
        Header header = new Header(moe4jVersion, modelSha256(), model.path().getFileName().toString(), vocab,
                o.chunkTokens(), Frequencies.BITS, spelling.escapes(), length, crc);
        long[] counts = new long[2]; // tokens, chunks
        ExecutorService pool = threads(o.jobs());
        long size = writeAtomically(out, "cannot compress " + in + " to " + out, pool, tmp -> {
            try (InputStream is = new BufferedInputStream(Files.newInputStream(in));
                 DataOutputStream os = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16))) {
                header.write(os);
                ArrayDeque<Pending<Chunk, byte[]>> inFlight = new ArrayDeque<>();
                List<Chunk> group = new ArrayList<>();
                long[] done = new long[1];
                Runnable drainOne = () -> writeChunks(inFlight.removeFirst(), os, done, length, progress);
                chunks(is, o.chunkTokens(), chunk -> {
                    group.add(chunk);
                    counts[0] += chunk.units.length;
                    counts[1]++;
                    if (group.size() == o.lanes()) {
                        List<Chunk> g = List.copyOf(group);
                        group.clear();
                        inFlight.add(new Pending<>(g, pool.submit(() -> encodeGroup(g, o.batch()))));
                        while (inFlight.size() > 2 * o.jobs()) drainOne.run();
                    }
                });
                if (!group.isEmpty()) inFlight.add(new Pending<>(List.copyOf(group), pool.submit(() -> encodeGroup(group, o.batch()))));
                while (!inFlight.isEmpty()) drainOne.run();
                if (done[0] != length) throw new IllegalStateException("coded " + done[0] + " of " + length + " bytes");
            }
        });
        return new Stats(length, size, counts[0], counts[1], (System.nanoTime() - t0) / 1e9);
    }

    private record Pending<I, R>(List<I> inputs, Future<List<R>> result) {
    }

    private void writeChunks(Pending<Chunk, byte[]> p, DataOutputStream os, long[] done, long total, Progress progress) {
        List<byte[]> payloads = await(p.result());
        try {
            for (int i = 0; i < payloads.size(); i++) {
                Chunk c = p.inputs().get(i);
                Header.writeVarint(os, c.units.length);
                Header.writeVarint(os, c.bytes);
                os.writeInt(c.crc);
                Header.writeVarint(os, payloads.get(i).length);
                os.write(payloads.get(i));
                done[0] += c.bytes;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        progress.update(done[0], total);
    }

    /** Range-codes a group of chunks, evaluating them together: each forward pass takes up to {@code batch} tokens of each. */
    private List<byte[]> encodeGroup(List<Chunk> chunks, int batch) {
        int k = chunks.size();
        int step = (int) Math.max(1, Math.min(batch, MAX_LOGITS / ((long) k * vocab)));
        int lead = bos >= 0 ? 1 : 0;
        RangeEncoder[] enc = new RangeEncoder[k];
        KvCache[] caches = new KvCache[k];
        int[] fed = new int[k], coded = new int[k];
        Frequencies f = new Frequencies(vocab, spelling.escapes());
        for (int l = 0; l < k; l++) {
            enc[l] = new RangeEncoder();
            int[] units = chunks.get(l).units;
            caches[l] = new KvCache(tf.config(), Math.max(1, units.length - 1 + lead), KvType.F32);
            if (lead == 0) {
                f.uniform();
                encodeUnit(enc[l], f, units[0]);
                coded[l] = 1;
            }
        }
        while (true) {
            List<Transformer.SequenceInput> inputs = new ArrayList<>(k);
            int[] lanes = new int[k];
            int active = 0;
            for (int l = 0; l < k; l++) {
                int[] units = chunks.get(l).units;
                int total = units.length - 1 + lead;
                if (fed[l] >= total) continue;
                int m = Math.min(step, total - fed[l]);
                int[] tokens = new int[m];
                for (int j = 0; j < m; j++) {
                    int pos = fed[l] + j;
                    tokens[j] = pos < lead ? bos : spelling.input(units[pos - lead]);
                }
                fed[l] += m;
                inputs.add(new Transformer.SequenceInput(caches[l], tokens, true));
                lanes[active++] = l;
            }
            if (active == 0) break;
            float[][] logits = tf.forward(inputs, null);
            for (int i = 0; i < active; i++) {
                int l = lanes[i];
                int[] units = chunks.get(l).units;
                for (int r = 0; r < inputs.get(i).tokens().length; r++) {
                    f.fromLogits(logits[i], r * vocab);
                    encodeUnit(enc[l], f, units[coded[l]++]);
                }
            }
        }
        for (KvCache c : caches) c.close(); // the pages go back to the pool now, not when the collector finds them
        List<byte[]> out = new ArrayList<>(k);
        for (RangeEncoder e : enc) out.add(e.finish());
        return out;
    }

    private void encodeUnit(RangeEncoder enc, Frequencies f, int unit) {
        if (unit < vocab) {
            f.encode(enc, unit);
        } else {
            f.encode(enc, vocab);
            enc.encodeBits(unit - vocab, 8);
        }
    }

    /** Reads the input piece by piece, spells each piece, and hands out chunks of {@code chunkTokens} units. */
    private void chunks(InputStream in, int chunkTokens, java.util.function.Consumer<Chunk> sink) throws IOException {
        byte[] buf = new byte[32 * PIECE];
        int start = 0, end = 0;
        boolean eof = false;
        ByteSpelling.Units units = new ByteSpelling.Units();
        int emitted = 0;
        while (true) {
            if (!eof && end - start < 16 * PIECE) {
                System.arraycopy(buf, start, buf, 0, end - start);
                end -= start;
                start = 0;
                int r;
                while (end < buf.length && (r = in.read(buf, end, buf.length - end)) > 0) end += r;
                eof = end < buf.length;
            }
            if (start == end) break;
            int cut = pieceEnd(buf, start, end, eof);
            spelling.spell(buf, start, cut - start, units);
            start = cut;
            while (units.n - emitted >= chunkTokens) {
                sink.accept(chunk(units.a, emitted, chunkTokens));
                emitted += chunkTokens;
            }
            if (emitted > 0) { // keep only what is not emitted yet
                System.arraycopy(units.a, emitted, units.a, 0, units.n - emitted);
                units.n -= emitted;
                emitted = 0;
            }
        }
        if (units.n > 0) sink.accept(chunk(units.a, 0, units.n));
    }

    /** Where the piece starting at {@code start} ends: after a line break past PIECE bytes, else at a space, else between characters. */
    private static int pieceEnd(byte[] b, int start, int end, boolean eof) {
        int max = Math.min(end, start + 16 * PIECE);
        if (eof && end - start <= 16 * PIECE) {
            for (int i = start + PIECE; i < end; i++) if (b[i] == '\n') return i + 1;
            return end;
        }
        for (int i = start + PIECE; i < max; i++) if (b[i] == '\n') return i + 1;
        for (int i = max - 1; i > start + PIECE; i--) if (b[i] == ' ') return i;
        int i = max;
        while (i > start + 1 && (b[i] & 0xC0) == 0x80) i--; // not inside a UTF-8 character
        return i;
    }

    private Chunk chunk(int[] a, int from, int n) {
        int[] units = Arrays.copyOfRange(a, from, from + n);
        CRC32 crc = new CRC32();
        long bytes = 0;
        for (int u : units) {
            byte[] p = spelling.bytes(u);
            crc.update(p);
            bytes += p.length;
        }
        return new Chunk(units, Math.toIntExact(bytes), (int) crc.getValue());
    }

    // ---- decompression -------------------------------------------------------------------------------------------

    /** A chunk record read from the file. */
    private record Record(int index, int units, int bytes, int crc, byte[] payload) {
    }

    public Stats decompress(Path in, Path out, Options o, Progress progress) {
        long t0 = System.nanoTime();
        ExecutorService pool = threads(o.jobs());
        long[] counts = new long[2]; // tokens, chunks
        Header[] read = new Header[1];
        writeAtomically(out, "cannot decompress " + in + " to " + out, pool, tmp -> {
            try (InputStream raw = new BufferedInputStream(Files.newInputStream(in), 1 << 16);
                 OutputStream os = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                Header h = Header.read(raw);
                read[0] = h;
                checkCompatible(h);
                DataInputStream is = new DataInputStream(raw);
                CRC32 whole = new CRC32();
                long[] done = new long[1];
                long expected = 0;
                ArrayDeque<Pending<Record, byte[]>> inFlight = new ArrayDeque<>();
                List<Record> group = new ArrayList<>();
                Runnable drainOne = () -> {
                    Pending<Record, byte[]> p = inFlight.removeFirst();
                    try {
                        for (byte[] b : await(p.result())) {
                            os.write(b);
                            whole.update(b);
                            done[0] += b.length;
                        }
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                    progress.update(done[0], h.originalLength());
                };
                int index = 0;
                while (expected < h.originalLength()) {
                    Record r = readRecord(is, h, index++, expected);
                    expected += r.bytes;
                    counts[0] += r.units;
                    counts[1]++;
                    group.add(r);
                    if (group.size() == o.lanes() || expected == h.originalLength()) {
                        List<Record> g = List.copyOf(group);
                        group.clear();
                        inFlight.add(new Pending<>(g, pool.submit(() -> decodeGroup(g, h.escapes()))));
                        while (inFlight.size() > 2 * o.jobs()) drainOne.run();
                    }
                }
                while (!inFlight.isEmpty()) drainOne.run();
                if (is.read() != -1) throw new CorruptDataException("the compressed file has data after its last chunk");
                if ((int) whole.getValue() != h.originalCrc()) {
                    throw new CorruptDataException("the decompressed data does not match the checksum of the original");
                }
            }
        });
        long compressedSize;
        try {
            compressedSize = Files.size(in);
        } catch (IOException e) {
            throw ioError("cannot read " + in, e);
        }
        return new Stats(read[0].originalLength(), compressedSize, counts[0], counts[1], (System.nanoTime() - t0) / 1e9);
    }

    /** Refuses a file this model and moe4j cannot reproduce the probabilities of, naming what differs. */
    private void checkCompatible(Header h) {
        if (!Arrays.equals(h.modelSha256(), modelSha256())) {
            throw new Moe4jException("the file was compressed with another model: '" + h.modelName() + "' (sha256 "
                    + h.modelHash() + "), not '" + model.path().getFileName() + "' (sha256 "
                    + HexFormat.of().formatHex(modelSha256()) + "); decompress it with the same model file");
        }
        if (!h.moe4jVersion().equals(moe4jVersion)) {
            throw new Moe4jException("the file was compressed by " + h.moe4jVersion() + ", this is " + moe4jVersion
                    + ": the model's probabilities are only reproducible with the same moe4j version");
        }
        if (h.vocab() != vocab || h.escapes() != spelling.escapes() || h.chunkTokens() > maxChunkTokens()) {
            throw new CorruptDataException("the header does not fit the model (vocabulary " + h.vocab()
                    + ", chunks of " + h.chunkTokens() + " tokens)");
        }
    }

    private static Record readRecord(DataInputStream is, Header h, int index, long before) throws IOException {
        try {
            long units = Header.readVarint(is), bytes = Header.readVarint(is);
            int crc = is.readInt();
            long len = Header.readVarint(is);
            // a unit costs at most ~32 bits (an escaped byte); anything beyond that is damage, not data
            if (units < 1 || units > h.chunkTokens() || bytes > h.originalLength() - before || len > 8L * units + 64) {
                throw new CorruptDataException("the compressed file is damaged: chunk " + index + " has an impossible header");
            }
            byte[] payload = new byte[(int) len];
            is.readFully(payload);
            return new Record(index, (int) units, (int) bytes, crc, payload);
        } catch (EOFException e) {
            throw new CorruptDataException("the compressed file is truncated: it ends in chunk " + index + ", after "
                    + before + " of " + h.originalLength() + " original bytes");
        }
    }

    /** Decodes a group of chunks one token per chunk per forward pass, all chunks of the group in the same pass. */
    private List<byte[]> decodeGroup(List<Record> records, boolean escapes) {
        int k = records.size();
        int lead = bos >= 0 ? 1 : 0;
        RangeDecoder[] dec = new RangeDecoder[k];
        KvCache[] caches = new KvCache[k];
        int[][] units = new int[k][];
        int[] done = new int[k];
        Frequencies f = new Frequencies(vocab, escapes);
        for (int l = 0; l < k; l++) {
            Record r = records.get(l);
            dec[l] = new RangeDecoder(r.payload);
            units[l] = new int[r.units];
            caches[l] = new KvCache(tf.config(), Math.max(1, r.units - 1 + lead), KvType.F32);
            if (lead == 0) {
                f.uniform();
                units[l][0] = decodeUnit(dec[l], f);
                done[l] = 1;
            }
        }
        List<Transformer.SequenceInput> inputs = new ArrayList<>(k);
        int[] lanes = new int[k];
        while (true) {
            inputs.clear();
            int active = 0;
            for (int l = 0; l < k; l++) {
                if (done[l] >= units[l].length) continue;
                int token = done[l] == 0 ? bos : spelling.input(units[l][done[l] - 1]);
                inputs.add(new Transformer.SequenceInput(caches[l], new int[]{token}, false));
                lanes[active++] = l;
            }
            if (active == 0) break;
            float[][] logits = tf.forward(inputs, null);
            for (int i = 0; i < active; i++) {
                int l = lanes[i];
                f.fromLogits(logits[i], 0);
                units[l][done[l]++] = decodeUnit(dec[l], f);
            }
        }
        for (KvCache c : caches) c.close();
        List<byte[]> out = new ArrayList<>(k);
        for (int l = 0; l < k; l++) {
            Record r = records.get(l);
            if (dec[l].overrun() > RangeEncoder.RANGE_BITS / 8 + 1) {
                throw new CorruptDataException("the compressed file is damaged: chunk " + r.index + " ends too early");
            }
            byte[] bytes = new byte[r.bytes];
            CRC32 crc = new CRC32();
            int pos = 0;
            for (int u : units[l]) {
                byte[] p = spelling.bytes(u);
                if (pos + p.length > bytes.length) throw damaged(r);
                System.arraycopy(p, 0, bytes, pos, p.length);
                pos += p.length;
            }
            crc.update(bytes, 0, pos);
            if (pos != bytes.length || (int) crc.getValue() != r.crc) throw damaged(r);
            out.add(bytes);
        }
        return out;
    }

    private static CorruptDataException damaged(Record r) {
        return new CorruptDataException("chunk " + r.index + " does not decode to its checksum: the compressed file is "
                + "damaged (or was made on a CPU backend whose arithmetic differs)");
    }

    private int decodeUnit(RangeDecoder dec, Frequencies f) {
        int s = f.decode(dec);
        return s < vocab ? s : vocab + dec.decodeBits(8);
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    /** SHA-256 of the model file, computed once. */
    public synchronized byte[] modelSha256() {
        if (sha256 == null) sha256 = sha256(model.path());
        return sha256.clone();
    }

    static byte[] sha256(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int r; (r = in.read(buf)) > 0; ) md.update(buf, 0, r);
            return md.digest();
        } catch (IOException e) {
            throw ioError("cannot read " + file, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int crc32(Path file) throws IOException {
        CRC32 crc = new CRC32();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int r; (r = in.read(buf)) > 0; ) crc.update(buf, 0, r);
        }
        return (int) crc.getValue();
    }

    private static ExecutorService threads(int n) {
        return Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "moe4j-coder");
            t.setDaemon(true);
            return t;
        });
    }

    private static <R> List<R> await(Future<List<R>> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Moe4jException("interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            if (e.getCause() instanceof Error err) throw err;
            throw new IllegalStateException(e.getCause());
        }
    }

    /** Writes {@code body}'s output to {@code OUT.part}, renamed to {@code out} when it succeeded and deleted when not. */
    private static long writeAtomically(Path out, String what, ExecutorService pool, Body body) {
        Path tmp = partFile(out);
        try {
            body.write(tmp);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw ioError(what, e);
        } catch (UncheckedIOException e) {
            deleteQuietly(tmp);
            throw ioError(what, e.getCause());
        } catch (RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        } finally {
            pool.shutdownNow();
        }
        return moveInPlace(tmp, out);
    }

    @FunctionalInterface
    private interface Body {
        void write(Path tmp) throws IOException;
    }

    private static Path partFile(Path out) {
        Path abs = out.toAbsolutePath();
        return abs.resolveSibling(abs.getFileName() + ".part");
    }

    private static long moveInPlace(Path tmp, Path out) {
        try {
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return Files.size(out);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw ioError("cannot write " + out, e);
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // the error being reported matters more than a leftover partial file
        }
    }

    private static Moe4jException ioError(String what, IOException e) {
        String detail = e instanceof NoSuchFileException n ? "no such file " + n.getFile() : e.toString();
        return new Moe4jException(what + ": " + detail, e);
    }
}
