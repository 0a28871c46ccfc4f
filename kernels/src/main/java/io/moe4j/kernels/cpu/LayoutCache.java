package io.moe4j.kernels.cpu;

import io.moe4j.kernels.ModelSource;
import io.moe4j.kernels.GgmlType;

import io.moe4j.kernels.quant.BlockFormats;
import io.moe4j.kernels.quant.InterleavedFormat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A model's interleaved matrices (the decode kernels' layout, {@link InterleavedFormat}) kept in a file, so that a
 * later load maps that file instead of copying every matrix again. Why: the copy costs more than reading the file.
 * A 7.4 GB Q8_0 model takes 15-20 s to load on 2 cores, and half of that is the operating system clearing fresh
 * pages for the copies, which a file mapping does not need. The kernels read a mapped copy as fast as a copy in
 * memory: 31-33 GB/s either way for Q8_0 matrices streamed on 2 threads.
 *
 * <p>Off unless a folder is named: the {@code moe4j.layoutCache} system property or the {@code MOE4J_LAYOUT_CACHE}
 * environment variable. The first load then writes {@code <model file name>.<key>.moe4j-layout} there, about the
 * model's size; later loads of the same file map it. The key covers the model file's path, size, modification
 * time, header and samples of its data, and a fingerprint of every interleaved layout (a fixed pseudo-random group
 * packed by each type), so a changed model or a moe4j with another layout never reads a stale copy. A file that fails its checks is ignored
 * and written again; one that cannot be written costs a warning, not the load.
 */
final class LayoutCache {
    private static final System.Logger LOG = System.getLogger(LayoutCache.class.getName());
    private static final byte[] MAGIC = "MOE4JLAY".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    /** Header: magic, version, model size, model mtime, fingerprint (32 bytes), entry count. */
    private static final int HEADER = 8 + 4 + 8 + 8 + 32 + 4;
    /** Entry: source offset, type id, rows, cols, slice rows, data offset, data bytes. */
    private static final int ENTRY = 8 + 4 + 4 + 4 + 4 + 8 + 8;
    /**
     * Each matrix starts this far past a page boundary. The decode kernels proved sensitive to where matrices start
     * (docs/performance.md); 64 bytes past a page is where the in-memory copies start, and measured as fast mapped.
     */
    private static final long PAGE = 4096, START = 64;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One interleaved matrix: where its source lies in the model file, its shape, and its bytes here. */
    private record Entry(long sourceOffset, GgmlType type, int rows, int cols, int sliceRows, long dataOffset, long dataBytes) {
        boolean describes(CpuMatrix m, long sourceOffset, int sliceRows) {
            return this.sourceOffset == sourceOffset && type == m.type() && rows == m.rows() && cols == m.cols() && this.sliceRows == sliceRows;
        }
    }

    /** A matrix of this load: its entry, and where its bytes are now (the cache file's mapping, or a copy in memory). */
    private record Kept(Entry entry, MemorySegment bytes) {
    }

    private final ModelSource model;
    private final Path file;
    private final long modelSize, modelTime;
    private final byte[] fingerprint;
    /** The mapped cache file's entries by source offset; empty when there was no usable file. */
    private final Map<Long, Entry> cached = new HashMap<>();
    private MemorySegment mapping;
    /** Every matrix interleaved during this load, in order. */
    private final List<Kept> kept = new ArrayList<>();
    private int hits, misses;

    private LayoutCache(ModelSource model, Path dir) throws IOException {
        this.model = model;
        Path source = model.path().toAbsolutePath();
        this.modelSize = model.mapping().byteSize();
        this.modelTime = Files.getLastModifiedTime(source).toMillis();
        this.fingerprint = layoutFingerprint();
        MessageDigest key = sha256();
        key.update(source.toString().getBytes(StandardCharsets.UTF_8));
        key.update(ByteBuffer.allocate(16).putLong(modelSize).putLong(modelTime).array());
        key.update(fingerprint);
        sampleContents(model.mapping(), model.dataStart(), key);
        String hex = HexFormat.of().formatHex(key.digest(), 0, 8);
        this.file = dir.resolve(source.getFileName() + "." + hex + ".moe4j-layout");
        if (Files.isRegularFile(file)) {
            try {
                map();
            } catch (IOException | RuntimeException e) {
                cached.clear();
                mapping = null;
                LOG.log(System.Logger.Level.WARNING, "moe4j: ignoring the layout cache " + file + " (" + e.getMessage() + "); it will be written again");
            }
        }
    }

    /** The cache folder named by {@code moe4j.layoutCache} or {@code MOE4J_LAYOUT_CACHE}, or null (no caching). */
    static Path configuredDirectory() {
        String dir = System.getProperty("moe4j.layoutCache");
        if (dir == null || dir.isBlank()) dir = System.getenv("MOE4J_LAYOUT_CACHE");
        return dir == null || dir.isBlank() ? null : Path.of(dir);
    }

    /** A cache for {@code model}'s matrices in {@code dir} (created if missing), or null where it cannot be used. */
    static LayoutCache open(ModelSource model, Path dir) {
        if (dir == null) return null;
        try {
            Files.createDirectories(dir);
            return new LayoutCache(model, dir);
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "moe4j: no layout cache in " + dir + ": " + e.getMessage());
            return null;
        }
    }

    /** The cache file of this model (whether or not it exists yet). */
    Path file() {
        return file;
    }

    /** Matrices of this load that came from the cache file, and that were copied in memory. */
    int hits() {
        return hits;
    }

    int misses() {
        return misses;
    }

    /**
     * {@code m} (a tensor of the model file) in its interleaved layout, as {@link CpuMatrix#interleave(int, Arena)}
     * gives it: from the cache file when it holds it, else copied in memory and remembered for {@link #finish}.
     */
    CpuMatrix interleave(CpuMatrix m, int sliceRows) {
        long sourceOffset = m.data().address() - model.mapping().address();
        if (sourceOffset < 0 || sourceOffset >= model.mapping().byteSize()) return m.interleave(sliceRows, model.arena()); // not the file's
        Entry e = cached.get(sourceOffset);
        if (e != null && e.describes(m, sourceOffset, sliceRows)) {
            MemorySegment bytes = mapping.asSlice(e.dataOffset(), e.dataBytes());
            CpuMatrix w = new CpuMatrix(bytes, m.type(), m.rows(), m.cols(), true);
            kept.add(new Kept(e, bytes));
            hits++;
            return w;
        }
        CpuMatrix w = m.interleave(sliceRows, model.arena());
        if (w != m) {
            kept.add(new Kept(new Entry(sourceOffset, m.type(), m.rows(), m.cols(), sliceRows, 0, w.data().byteSize()), w.data()));
            misses++;
        }
        return w;
    }

    /**
     * After the last matrix: writes the cache file when this load copied any matrix (no file yet, or one that did
     * not hold everything). Written to a temporary file first and renamed, so no reader sees half a file.
     */
    void finish() {
        if (misses == 0) return;
        long t0 = System.nanoTime(), bytes = 0;
        for (Kept k : kept) bytes += k.bytes().byteSize();
        LOG.log(System.Logger.Level.INFO, String.format("moe4j: writing the layout cache %s (%.2f GB)", file, bytes / 1e9));
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try {
            long total = write(tmp);
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            LOG.log(System.Logger.Level.INFO, String.format("moe4j: wrote the layout cache %s (%.2f GB) in %.1f s; later loads of %s map it",
                    file, total / 1e9, (System.nanoTime() - t0) / 1e9, model.path().getFileName()));
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "moe4j: could not write the layout cache " + file + ": " + e.getMessage());
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the warning above names the problem
            }
        }
    }

    private long write(Path tmp) throws IOException {
        int n = kept.size();
        long at = align(HEADER + (long) n * ENTRY);
        List<Entry> placed = new ArrayList<>(n);
        for (Kept k : kept) {
            Entry e = k.entry();
            placed.add(new Entry(e.sourceOffset(), e.type(), e.rows(), e.cols(), e.sliceRows(), at, e.dataBytes()));
            at = align(at + e.dataBytes());
        }
        ByteBuffer head = ByteBuffer.allocate(HEADER + n * ENTRY).order(ByteOrder.LITTLE_ENDIAN);
        head.put(MAGIC).putInt(VERSION).putLong(modelSize).putLong(modelTime).put(fingerprint).putInt(n);
        for (Entry e : placed) {
            head.putLong(e.sourceOffset()).putInt(e.type().id).putInt(e.rows()).putInt(e.cols()).putInt(e.sliceRows())
                    .putLong(e.dataOffset()).putLong(e.dataBytes());
        }
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            writeFully(ch, head.flip(), 0);
            for (int i = 0; i < n; i++) {
                MemorySegment d = kept.get(i).bytes();
                long off = placed.get(i).dataOffset();
                for (long p = 0; p < d.byteSize(); p += CHUNK) {
                    writeFully(ch, d.asSlice(p, Math.min(CHUNK, d.byteSize() - p)).asByteBuffer(), off + p);
                }
            }
            if (ch.size() < at) writeFully(ch, ByteBuffer.allocate(1), at - 1); // the last matrix's padding
            ch.force(true);
        }
        return at;
    }

    private static final long CHUNK = 16 << 20;

    private static void writeFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
        while (b.hasRemaining()) position += ch.write(b, position);
    }

    private static long align(long offset) {
        return (offset - START + PAGE - 1) / PAGE * PAGE + START;
    }

    /** Maps the cache file and reads its entries, checking everything against this model and this moe4j. */
    private void map() throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < HEADER) throw new IOException("truncated: " + size + " bytes");
            MemorySegment m = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, model.arena());
            byte[] magic = m.asSlice(0, 8).toArray(ValueLayout.JAVA_BYTE);
            if (!java.util.Arrays.equals(magic, MAGIC)) throw new IOException("not a moe4j layout cache");
            if (m.get(INT, 8) != VERSION) throw new IOException("version " + m.get(INT, 8) + ", this moe4j writes " + VERSION);
            if (m.get(LONG, 12) != modelSize || m.get(LONG, 20) != modelTime) throw new IOException("made from another version of the model file");
            if (!java.util.Arrays.equals(m.asSlice(28, 32).toArray(ValueLayout.JAVA_BYTE), fingerprint)) {
                throw new IOException("made by a moe4j with other interleaved layouts");
            }
            int n = m.get(INT, 60);
            if (n < 0 || HEADER + (long) n * ENTRY > size) throw new IOException("entry count " + n + " does not fit the file");
            for (int i = 0; i < n; i++) {
                long p = HEADER + (long) i * ENTRY;
                GgmlType type = GgmlType.byId(m.get(INT, p + 8));
                int rows = m.get(INT, p + 12), cols = m.get(INT, p + 16), sliceRows = m.get(INT, p + 20);
                long off = m.get(LONG, p + 24), bytes = m.get(LONG, p + 32);
                InterleavedFormat f = type == null ? null : BlockFormats.interleaved(type);
                if (f == null || rows <= 0 || cols <= 0 || cols % type.blockSize != 0 || off < 0 || off > size || bytes > size - off
                        || bytes != (rows + InterleavedFormat.ROWS - 1L) / InterleavedFormat.ROWS * f.groupBytes(cols)) {
                    throw new IOException("entry " + i + " is damaged");
                }
                cached.put(m.get(LONG, p), new Entry(m.get(LONG, p), type, rows, cols, sliceRows, off, bytes));
            }
            mapping = m;
        }
    }

    /**
     * Adds what identifies the model file's contents cheaply: its header (metadata and tensor infos, up to 16 MiB)
     * and 64 bytes at each of 256 places spread over the tensor data. So a file replaced by another of the same
     * size and modification time (a copy that kept the time) still gets its own cache.
     */
    private static void sampleContents(MemorySegment file, long dataStart, MessageDigest key) {
        long size = file.byteSize(), head = Math.min(Math.min(dataStart, size), 16L << 20);
        key.update(file.asSlice(0, head).asByteBuffer());
        long span = size - head;
        for (int i = 0; i < 256 && span > 0; i++) {
            long at = head + span * i / 256;
            key.update(file.asSlice(at, Math.min(64, size - at)).asByteBuffer());
        }
    }

    /**
     * A digest of every interleaved layout of this build: a fixed pseudo-random group of 4 rows packed by each type
     * that has one. A change to any layout changes it, so caches written by another build are never read.
     */
    private static byte[] layoutFingerprint() {
        MessageDigest d = sha256();
        int cols = 256;
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType t : GgmlType.values()) {
                InterleavedFormat f = t.supported ? BlockFormats.interleaved(t) : null;
                if (f == null) continue;
                long rowBytes = t.bytesFor(cols);
                MemorySegment src = arena.allocate(rowBytes * InterleavedFormat.ROWS);
                SplittableRandom r = new SplittableRandom(t.id);
                for (long i = 0; i < src.byteSize(); i++) src.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
                MemorySegment dst = arena.allocate(f.groupBytes(cols));
                f.pack(src, 0, rowBytes, InterleavedFormat.ROWS, cols, dst, 0);
                d.update(t.name().getBytes(StandardCharsets.US_ASCII));
                d.update(dst.toArray(ValueLayout.JAVA_BYTE));
            }
        }
        return d.digest();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
