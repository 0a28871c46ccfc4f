package io.moe4j.gguf;

import io.moe4j.Moe4jException;
import io.moe4j.kernels.GgmlType;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.UnaryOperator;

/**
 * Writes a GGUF v3 file (little-endian), streaming: the metadata and every tensor's info are declared first, then
 * the tensor data is written one tensor at a time, in declaration order, so a multi-GB model never has to sit in the
 * heap.
 *
 * <pre>{@code
 * try (GgufWriter w = GgufWriter.create(path, metadata)) {   // metadata: Map<String, GgufValue>, kept in order
 *     w.addTensor("token_embd.weight", GgmlType.Q8_0, 4096, 32000);
 *     w.addTensor("output_norm.weight", GgmlType.F32, 4096);
 *     w.writeData("token_embd.weight", out -> { for (...) out.write(blockBytes); });  // streamed, checked
 *     w.writeData("output_norm.weight", normSegment);                                 // or a segment/buffer/array
 *     w.finish();                                                                      // atomic rename
 * }                                                                                    // close() without finish() = abort
 * }</pre>
 *
 * <p>Layout, as ggml and gguf-py write it: header, metadata in the given order, tensor infos in declaration order,
 * zero padding up to {@code general.alignment} (32 when the key is absent), then each tensor's data at the next
 * aligned offset, zero-padded up to the alignment, the last one too.
 *
 * <p>The file is written to a temporary file in the target's folder ({@code .<name>.tmp-<random>}) and renamed onto
 * the target (atomically, replacing an existing file) by {@link #finish()} only. Any failure (a write error such as a
 * full disk, a wrong byte count, a tensor written out of order or missing, a producer that throws) aborts the writer:
 * the temporary file is deleted, the target is left as it was, and the error is thrown as a
 * {@link ModelFormatException} (misuse or invalid content) or a {@link Moe4jException} (I/O). A writer is not
 * thread-safe.
 */
public final class GgufWriter implements AutoCloseable {

    /** Receives one tensor's bytes from a {@link TensorProducer}; small writes are buffered. */
    public interface TensorOutput {
        void write(MemorySegment src);

        void write(ByteBuffer src);

        void write(byte[] src, int offset, int length);

        default void write(byte[] src) {
            write(src, 0, src.length);
        }

        /** Bytes still expected for this tensor. */
        long remaining();
    }

    /** Produces one tensor's data: must write exactly the tensor's byte size to {@code out}. */
    @FunctionalInterface
    public interface TensorProducer {
        void produce(TensorOutput out) throws IOException;
    }

    static final int MAX_TENSOR_NAME_BYTES = 63; // ggml's GGML_MAX_NAME is 64 including the terminating zero
    private static final int BUFFER_BYTES = 1 << 20;
    private static final long MAX_DIRECT_CHUNK = 1L << 30;
    /**
     * Unbuffered writes bypass the kernel's page cache. In virtual machines buffered writes can cost the kernel
     * 1-2.5 s of CPU per GB (synth Q8_0 at ~380 MB/s, as fast as buffered dd) where O_DIRECT wrote 1.0-1.2 GB/s.
     * Used where the file system accepts it; {@code -Dmoe4j.gguf.direct=false} turns it off.
     */
    private static final boolean TRY_DIRECT = !"false".equals(System.getProperty("moe4j.gguf.direct"));
    private static final int DIRECT_ALIGN = 4096;
    private static final int VERSION = 3;

    private enum State { DECLARING, WRITING, FINISHED, FAILED }

    private record Declared(String name, GgmlType type, long[] dims, long byteSize, long offset) {
        String describe() {
            return "'" + name + "' (" + type + " " + Arrays.toString(dims) + ", " + byteSize + " bytes)";
        }
    }

    private final Path target;
    private final Path temp;
    private final WritableByteChannel out;
    private final FileChannel fileChannel; // the temporary file; {@code out} unless a test wrapped it
    private final LinkedHashMap<String, GgufValue> metadata;
    private final List<Declared> tensors = new ArrayList<>();
    private final Map<String, Integer> indexByName = new HashMap<>();
    /** The write buffer, aligned for unbuffered (O_DIRECT) writes, whose offsets, lengths and addresses must be. */
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(BUFFER_BYTES + DIRECT_ALIGN).alignedSlice(DIRECT_ALIGN);
    private final MemorySegment bufferSegment = MemorySegment.ofBuffer(buffer);
    /** Whether the file was opened for unbuffered writes: only whole aligned chunks go out until {@link #finish}. */
    private final boolean direct;
    private int bufferPos;
    private long alignment;
    private long dataBytes; // total declared data bytes including padding
    private long written;   // bytes handed to the channel or the buffer so far
    private long headerEnd; // aligned start of the tensor data, known once the header is written
    private int next;       // index of the next tensor whose data is expected
    private State state = State.DECLARING;
    private String failure;

    private GgufWriter(Path target, Map<String, GgufValue> metadata, UnaryOperator<WritableByteChannel> wrap, boolean tryDirect) {
        this.target = target.toAbsolutePath().normalize();
        this.metadata = new LinkedHashMap<>();
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            checkMetadata(e.getKey(), e.getValue());
            this.metadata.put(e.getKey(), e.getValue());
        }
        this.alignment = alignmentOf(this.metadata);
        Path dir = this.target.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new Moe4jException("cannot write " + this.target + ": folder " + dir + " does not exist");
        }
        if (Files.isDirectory(this.target)) {
            throw new Moe4jException("cannot write " + this.target + ": it is a folder");
        }
        FileChannel ch = null;
        Path tmp = null;
        boolean unbuffered = false;
        for (int attempt = 0; ch == null; attempt++) {
            tmp = dir.resolve("." + this.target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 16));
            try {
                ch = wrap == null && tryDirect ? openDirect(tmp) : null;
                unbuffered = ch != null;
                if (ch == null) ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (FileAlreadyExistsException e) {
                if (attempt > 100) throw new Moe4jException("cannot create a temporary file next to " + this.target, e);
            } catch (IOException e) {
                throw new Moe4jException("cannot create a temporary file next to " + this.target + ": " + e, e);
            }
        }
        this.temp = tmp;
        this.fileChannel = ch;
        this.direct = unbuffered;
        WritableByteChannel wrapped = wrap == null ? ch : wrap.apply(ch);
        this.out = wrapped;
    }

    /**
     * Opens {@code tmp} for unbuffered writes, or returns null (the file not created) where the file system refuses
     * them or its block size does not divide {@link #DIRECT_ALIGN}.
     */
    private static FileChannel openDirect(Path tmp) throws FileAlreadyExistsException {
        try {
            long block = Files.getFileStore(tmp.getParent()).getBlockSize();
            if (block <= 0 || DIRECT_ALIGN % block != 0) return null;
            return FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT);
        } catch (FileAlreadyExistsException e) {
            throw e;
        } catch (IOException | UnsupportedOperationException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the buffered open below reports any real problem with the folder
            }
            return null;
        }
    }

    /**
     * Starts writing {@code path} with these metadata entries, written in the map's iteration order (use a
     * LinkedHashMap). Every value is checked now: its Java value must match its GGUF type as {@link GgufValue}
     * documents (Integer is accepted for Long, long[] for the int[] of narrow integer arrays, Double for FLOAT32).
     * A {@code general.alignment} entry (UINT32, a power of two) sets the alignment.
     */
    public static GgufWriter create(Path path, Map<String, GgufValue> metadata) {
        return new GgufWriter(path, metadata, null, TRY_DIRECT);
    }

    /** Starts writing {@code path} with a copy of another file's metadata (in its order). */
    public static GgufWriter create(Path path, GgufMetadata metadata) {
        return new GgufWriter(path, metadata.asMap(), null, TRY_DIRECT);
    }

    /** With unbuffered writes tried ({@code true}, where the file system takes them) or not: for tests. */
    static GgufWriter create(Path path, Map<String, GgufValue> metadata, boolean tryDirect) {
        return new GgufWriter(path, metadata, null, tryDirect);
    }

    /** Whether this writer writes unbuffered (O_DIRECT). */
    boolean isDirect() {
        return direct;
    }

    /** For tests: the file channel wrapped (to simulate write errors such as a full disk); buffered writes. */
    static GgufWriter create(Path path, Map<String, GgufValue> metadata, UnaryOperator<WritableByteChannel> wrap) {
        return new GgufWriter(path, metadata, wrap, false);
    }

    /**
     * Rewrites {@code source} as {@code target}: same metadata (in order), same tensors (in order), laid out as ggml
     * lays out a file. The tensor data is streamed from the source's mapping.
     */
    public static Path copy(GgufFile source, Path target) {
        try (GgufWriter w = create(target, source.metadata())) {
            for (GgufTensor t : source.tensors().values()) w.addTensor(t.name(), t.type(), t.dims());
            for (GgufTensor t : source.tensors().values()) w.writeData(t.name(), t.data());
            return w.finish();
        }
    }

    /** The final path this writer produces. */
    public Path path() {
        return target;
    }

    public long alignment() {
        return alignment;
    }

    /** Adds or replaces a metadata entry; only before the first tensor data is written. */
    public GgufWriter putMetadata(String key, GgufValue value) {
        requireDeclaring("add metadata key '" + key + "'");
        try {
            checkMetadata(key, value);
            long a = key.equals("general.alignment") ? alignmentOf(Map.of(key, value)) : alignment;
            metadata.put(key, value);
            if (a != alignment) {
                alignment = a;
                relayout();
            }
        } catch (RuntimeException e) {
            throw fail(e);
        }
        return this;
    }

    /**
     * Declares a tensor: ggml dims (dims[0] is the contiguous one), 1 to 4 of them, each at least 1, dims[0] a
     * multiple of the type's block size. Only before the first tensor data is written. Returns this writer.
     */
    public GgufWriter addTensor(String name, GgmlType type, long... dims) {
        requireDeclaring("declare tensor '" + name + "'");
        try {
            if (name == null || name.isEmpty()) throw new ModelFormatException(target + ": a tensor name is empty");
            int nameBytes = name.getBytes(StandardCharsets.UTF_8).length;
            if (nameBytes > MAX_TENSOR_NAME_BYTES) {
                throw new ModelFormatException(target + ": tensor name '" + name + "' is " + nameBytes
                        + " bytes, ggml allows at most " + MAX_TENSOR_NAME_BYTES);
            }
            utf8(target + ": tensor name '" + name + "'", name);
            if (type == null) throw new ModelFormatException(target + ": tensor '" + name + "' has no type");
            if (indexByName.containsKey(name)) throw new ModelFormatException(target + ": duplicate tensor name '" + name + "'");
            if (dims == null || dims.length < 1 || dims.length > GgufFile.MAX_DIMS) {
                throw new ModelFormatException(target + ": tensor '" + name + "' has " + (dims == null ? 0 : dims.length)
                        + " dimensions, expected 1 to " + GgufFile.MAX_DIMS);
            }
            long elements = 1;
            for (int d = 0; d < dims.length; d++) {
                if (dims[d] < 1) {
                    throw new ModelFormatException(target + ": tensor '" + name + "' dimension " + d + " is " + dims[d] + ", expected at least 1");
                }
                if (elements > GgufFile.MAX_ELEMENTS / dims[d]) {
                    throw new ModelFormatException(target + ": tensor '" + name + "' " + Arrays.toString(dims) + " has over 2^50 elements");
                }
                elements *= dims[d];
            }
            if (dims[0] % type.blockSize != 0) {
                throw new ModelFormatException(target + ": tensor '" + name + "' of type " + type + " has a first dimension of "
                        + dims[0] + ", not a multiple of the block size " + type.blockSize);
            }
            long size = type.bytesFor(elements);
            Declared t = new Declared(name, type, dims.clone(), size, dataBytes);
            tensors.add(t);
            indexByName.put(name, tensors.size() - 1);
            dataBytes = GgufFile.alignUp(dataBytes + size, alignment);
        } catch (RuntimeException e) {
            throw fail(e);
        }
        return this;
    }

    /** The byte size of a declared tensor's data. */
    public long tensorByteSize(String name) {
        Integer i = indexByName.get(name);
        if (i == null) throw new ModelFormatException(target + ": no tensor '" + name + "' was declared");
        return tensors.get(i).byteSize;
    }

    /** Writes a tensor's data from a memory segment (heap or native, e.g. another file's mapping). */
    public void writeData(String name, MemorySegment src) {
        Declared t = begin(name);
        try {
            checkSize(t, src.byteSize());
            put(src);
            end(t);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Writes a tensor's data from the buffer's remaining bytes; the buffer's position is not changed. */
    public void writeData(String name, ByteBuffer src) {
        writeData(name, MemorySegment.ofBuffer(src));
    }

    public void writeData(String name, byte[] src) {
        writeData(name, MemorySegment.ofArray(src));
    }

    /** Writes an F32 tensor's data from floats (little-endian). */
    public void writeData(String name, float[] src) {
        Declared t = begin(name);
        try {
            checkSize(t, 4L * src.length);
            putFloats(src);
            end(t);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Writes a tensor's data from a producer, which must write exactly {@link #tensorByteSize} bytes. */
    public void writeData(String name, TensorProducer producer) {
        Declared t = begin(name);
        long start = written;
        Output o = new Output(t, start);
        try {
            producer.produce(o);
            long got = written - start;
            if (got != t.byteSize) {
                throw new ModelFormatException(target + ": tensor " + t.describe() + " needs " + t.byteSize
                        + " bytes, its producer wrote " + got);
            }
            end(t);
        } catch (IOException e) {
            throw fail(new Moe4jException(target + ": producing the data of tensor '" + name + "' failed: " + e, e));
        } catch (RuntimeException e) {
            throw fail(e);
        } finally {
            o.closed = true;
        }
    }

    /**
     * Completes the file: checks that every declared tensor was written, flushes, syncs it to disk and renames the
     * temporary file onto the target. Returns the target path.
     */
    public Path finish() {
        if (state == State.FINISHED) return target;
        requireUsable("finish");
        try {
            if (state == State.DECLARING) writeHeader();
            if (next < tensors.size()) {
                Declared t = tensors.get(next);
                throw new ModelFormatException(target + ": the data of tensor " + t.describe() + " (tensor #" + next + " of "
                        + tensors.size() + ") was never written" + (tensors.size() - next > 1 ? ", nor that of the "
                        + (tensors.size() - next - 1) + " tensors after it" : ""));
            }
            flushAll();
            try {
                if (direct) fileChannel.truncate(written); // the last chunk went out padded to the alignment
                if (fileChannel != null) fileChannel.force(true);
                out.close();
                if (fileChannel != out) fileChannel.close();
            } catch (IOException e) {
                throw new Moe4jException("writing " + target + " failed: " + e, e);
            }
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new Moe4jException("cannot rename " + temp + " onto " + target + " atomically: " + e, e);
            } catch (IOException e) {
                throw new Moe4jException("cannot rename " + temp + " onto " + target + ": " + e, e);
            }
            state = State.FINISHED;
            return target;
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Aborts unless {@link #finish()} succeeded: the temporary file is deleted and the target left as it was. */
    @Override
    public void close() {
        if (state != State.FINISHED && state != State.FAILED) abort("closed before finish()");
    }

    // ---- state ----

    private void requireUsable(String what) {
        if (state == State.FAILED) {
            throw new ModelFormatException(target + ": cannot " + what + ": the writer was aborted (" + failure + ")");
        }
        if (state == State.FINISHED) throw new ModelFormatException(target + ": cannot " + what + ": the file is already finished");
    }

    private void requireDeclaring(String what) {
        requireUsable(what);
        if (state != State.DECLARING) {
            throw fail(new ModelFormatException(target + ": cannot " + what + " after tensor data has been written"));
        }
    }

    private RuntimeException fail(RuntimeException e) {
        if (state != State.FAILED && state != State.FINISHED) abort(e.getMessage());
        return e;
    }

    private void abort(String why) {
        state = State.FAILED;
        failure = why;
        try {
            out.close();
        } catch (IOException | RuntimeException ignored) {
            // the file is deleted anyway
        }
        try {
            if (fileChannel != out) fileChannel.close();
        } catch (IOException | RuntimeException ignored) {
            // idem
        }
        try {
            Files.deleteIfExists(temp);
        } catch (IOException ignored) {
            // nothing more can be done; the name says it is temporary
        }
    }

    private Declared begin(String name) {
        requireUsable("write the data of tensor '" + name + "'");
        try {
            if (state == State.DECLARING) writeHeader();
            Integer i = indexByName.get(name);
            if (i == null) throw new ModelFormatException(target + ": cannot write data for tensor '" + name + "': it was not declared");
            if (i < next) throw new ModelFormatException(target + ": the data of tensor '" + name + "' was already written");
            if (i > next) {
                throw new ModelFormatException(target + ": tensor '" + name + "' (tensor #" + i + ") written out of order: the data of tensor "
                        + tensors.get(next).describe() + " (tensor #" + next + ") must come first");
            }
            return tensors.get(i);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    private void checkSize(Declared t, long got) {
        if (got != t.byteSize) {
            throw new ModelFormatException(target + ": tensor " + t.describe() + " needs " + t.byteSize + " bytes, got " + got);
        }
    }

    private void end(Declared t) {
        padTo(headerEnd + GgufFile.alignUp(t.offset + t.byteSize, alignment));
        next++;
    }

    private void relayout() {
        long off = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Declared t = tensors.get(i);
            tensors.set(i, new Declared(t.name, t.type, t.dims, t.byteSize, off));
            off = GgufFile.alignUp(off + t.byteSize, alignment);
        }
        dataBytes = off;
    }

    // ---- serialization ----

    private void writeHeader() {
        Le h = new Le();
        h.i32(GgufFile.MAGIC).i32(VERSION).i64(tensors.size()).i64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            h.str(e.getKey());
            GgufValue v = e.getValue();
            h.i32(v.type().ordinal());
            value(h, e.getKey(), v.type(), v.elementType(), v.value());
        }
        for (Declared t : tensors) {
            h.str(t.name).i32(t.dims.length);
            for (long d : t.dims) h.i64(d);
            h.i32(t.type.id).i64(t.offset);
        }
        headerEnd = GgufFile.alignUp(h.size, alignment);
        state = State.WRITING;
        put(MemorySegment.ofArray(h.bytes).asSlice(0, h.size));
        padTo(headerEnd);
    }

    private static void value(Le h, String key, GgufValueType type, GgufValueType et, Object v) {
        switch (type) {
            case UINT8, INT8, BOOL -> h.i8((int) scalar(key, type, v));
            case UINT16, INT16 -> h.i16((int) scalar(key, type, v));
            case UINT32, INT32 -> h.i32((int) scalar(key, type, v));
            case UINT64, INT64 -> h.i64(scalar(key, type, v));
            case FLOAT32 -> h.i32(Float.floatToRawIntBits(((Number) v).floatValue()));
            case FLOAT64 -> h.i64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
            case STRING -> h.str((String) v);
            case ARRAY -> {
                h.i32(et.ordinal());
                int n = length(v);
                h.i64(n);
                switch (v) {
                    case float[] a -> { for (float x : a) h.i32(Float.floatToRawIntBits(x)); }
                    case double[] a -> { for (double x : a) h.i64(Double.doubleToRawLongBits(x)); }
                    case String[] a -> { for (String s : a) h.str(s); }
                    case GgufValue[] a -> { for (GgufValue x : a) value(h, key, GgufValueType.ARRAY, x.elementType(), x.value()); }
                    default -> { for (int i = 0; i < n; i++) value(h, key, et, null, element(v, i)); }
                }
            }
        }
    }

    /** Integer (or bool) value as a long; already range-checked by {@link #checkMetadata}. */
    private static long scalar(String key, GgufValueType type, Object v) {
        return switch (v) {
            case Boolean b -> b ? 1 : 0;
            case Number n -> n.longValue();
            default -> throw new IllegalStateException(key);
        };
    }

    private static Object element(Object array, int i) {
        return switch (array) {
            case int[] a -> a[i];
            case long[] a -> a[i];
            case boolean[] a -> a[i];
            default -> throw new IllegalStateException();
        };
    }

    private static int length(Object array) {
        return switch (array) {
            case int[] a -> a.length;
            case long[] a -> a.length;
            case boolean[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case String[] a -> a.length;
            case GgufValue[] a -> a.length;
            default -> -1;
        };
    }

    // ---- metadata validation: everything is checked when it is given, so writeHeader cannot fail on content ----

    private void checkMetadata(String key, GgufValue v) {
        if (key == null || key.isEmpty()) throw new ModelFormatException(target + ": a metadata key is empty");
        utf8(target + ": metadata key '" + key + "'", key);
        if (v == null || v.type() == null) throw new ModelFormatException(target + ": metadata key '" + key + "' has no value");
        checkValue(key, v.type(), v.elementType(), v.value(), 0);
    }

    private void checkValue(String key, GgufValueType type, GgufValueType et, Object v, int depth) {
        String where = target + ": metadata key '" + key + "'";
        if (v == null) throw new ModelFormatException(where + " has a null " + type + " value");
        switch (type) {
            case UINT8 -> range(where, type, v, 0, 0xFF);
            case INT8 -> range(where, type, v, Byte.MIN_VALUE, Byte.MAX_VALUE);
            case UINT16 -> range(where, type, v, 0, 0xFFFF);
            case INT16 -> range(where, type, v, Short.MIN_VALUE, Short.MAX_VALUE);
            case UINT32 -> range(where, type, v, Integer.MIN_VALUE, 0xFFFF_FFFFL); // an int's bit pattern is accepted
            case INT32 -> range(where, type, v, Integer.MIN_VALUE, Integer.MAX_VALUE);
            case UINT64, INT64 -> range(where, type, v, Long.MIN_VALUE, Long.MAX_VALUE);
            case FLOAT32, FLOAT64 -> {
                if (!(v instanceof Float || v instanceof Double)) throw wrongJavaType(where, type, v, "a Float or Double");
            }
            case BOOL -> {
                if (!(v instanceof Boolean)) throw wrongJavaType(where, type, v, "a Boolean");
            }
            case STRING -> {
                if (!(v instanceof String s)) throw wrongJavaType(where, type, v, "a String");
                utf8(where + " value", s);
            }
            case ARRAY -> {
                if (depth >= GgufFile.MAX_NESTING) throw new ModelFormatException(where + " nests arrays deeper than " + GgufFile.MAX_NESTING);
                if (et == null) throw new ModelFormatException(where + " is an ARRAY without an element type");
                int n = length(v);
                if (n < 0) throw wrongJavaType(where, type, v, "a Java array");
                boolean ok = switch (et) {
                    case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 ->
                            v instanceof int[] || v instanceof long[];
                    case FLOAT32 -> v instanceof float[];
                    case FLOAT64 -> v instanceof double[];
                    case BOOL -> v instanceof boolean[];
                    case STRING -> v instanceof String[];
                    case ARRAY -> v instanceof GgufValue[];
                };
                if (!ok) throw wrongJavaType(where, GgufValueType.ARRAY, v, "the Java array GgufFile reads for ARRAY of " + et);
                switch (v) {
                    case String[] a -> { for (int i = 0; i < n; i++) checkValue(key + "[" + i + "]", GgufValueType.STRING, null, a[i], depth + 1); }
                    case GgufValue[] a -> {
                        for (int i = 0; i < n; i++) {
                            if (a[i] == null || a[i].type() != GgufValueType.ARRAY) {
                                throw new ModelFormatException(where + " element " + i + " is not an ARRAY value");
                            }
                            checkValue(key + "[" + i + "]", GgufValueType.ARRAY, a[i].elementType(), a[i].value(), depth + 1);
                        }
                    }
                    case float[] a -> { }
                    case double[] a -> { }
                    case boolean[] a -> { }
                    default -> {
                        if (et != GgufValueType.UINT64 && et != GgufValueType.INT64) {
                            for (int i = 0; i < n; i++) checkValue(key + "[" + i + "]", et, null, element(v, i), depth + 1);
                        }
                    }
                }
            }
        }
    }

    private static void range(String where, GgufValueType type, Object v, long min, long max) {
        if (!(v instanceof Long || v instanceof Integer)) {
            throw wrongJavaType(where, type, v, "an integer (Long)");
        }
        long x = ((Number) v).longValue();
        if (x < min || x > max) throw new ModelFormatException(where + ": " + type + " value " + x + " is out of range");
    }

    private static ModelFormatException wrongJavaType(String where, GgufValueType type, Object v, String expected) {
        return new ModelFormatException(where + " is declared " + type + " but holds a " + v.getClass().getSimpleName()
                + ", expected " + expected);
    }

    private final CharsetEncoder encoder = StandardCharsets.UTF_8.newEncoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);

    private void utf8(String what, String s) {
        for (int i = 0; i < s.length(); i++) {
            if (Character.isSurrogate(s.charAt(i))) {
                try {
                    encoder.reset().encode(CharBuffer.wrap(s));
                } catch (CharacterCodingException e) {
                    throw new ModelFormatException(what + " is not valid Unicode (unpaired surrogate), it cannot be written as UTF-8");
                }
                return;
            }
        }
    }

    private long alignmentOf(Map<String, GgufValue> md) {
        GgufValue v = md.get("general.alignment");
        if (v == null) return GgufFile.DEFAULT_ALIGNMENT;
        if (v.type() != GgufValueType.UINT32) {
            throw new ModelFormatException(target + ": metadata key 'general.alignment' has type " + v.type() + ", ggml requires UINT32");
        }
        long a = ((Number) v.value()).longValue() & 0xFFFF_FFFFL;
        if (a <= 0 || a > (1 << 20) || Long.bitCount(a) != 1) {
            throw new ModelFormatException(target + ": general.alignment = " + a + " is invalid: it must be a power of two from 1 to 2^20");
        }
        return a;
    }

    // ---- byte output: a 1 MiB direct buffer for small writes, large native segments go straight to the channel ----

    private void put(MemorySegment src) {
        long n = src.byteSize();
        if (!direct && n >= BUFFER_BYTES && src.isNative()) {
            flush();
            for (long off = 0; off < n; off += MAX_DIRECT_CHUNK) {
                drain(src.asSlice(off, Math.min(MAX_DIRECT_CHUNK, n - off)).asByteBuffer());
            }
            written += n;
            return;
        }
        MemorySegment buf = bufferSegment;
        long off = 0;
        while (off < n) {
            if (bufferPos == BUFFER_BYTES) flush();
            long k = Math.min(n - off, BUFFER_BYTES - bufferPos);
            MemorySegment.copy(src, off, buf, bufferPos, k);
            bufferPos += (int) k;
            off += k;
        }
        written += n;
    }

    private void putFloats(float[] src) {
        MemorySegment buf = bufferSegment;
        int i = 0;
        while (i < src.length) {
            if (bufferPos > BUFFER_BYTES - 4) flush();
            int k = Math.min(src.length - i, (BUFFER_BYTES - bufferPos) / 4);
            MemorySegment.copy(src, i, buf, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), bufferPos, k);
            bufferPos += 4 * k;
            i += k;
        }
        written += 4L * src.length;
    }

    private static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[4096]);

    private void padTo(long position) {
        long n = position - written;
        if (n < 0) throw new IllegalStateException("write position " + written + " is past " + position);
        while (n > 0) {
            long k = Math.min(n, ZEROS.byteSize());
            put(ZEROS.asSlice(0, k));
            n -= k;
        }
    }

    /** Makes room in the buffer: writes it out (unbuffered: its whole aligned chunks, the rest moves to the front). */
    private void flush() {
        if (bufferPos == 0) return;
        int n = direct ? bufferPos & -DIRECT_ALIGN : bufferPos;
        if (n == 0) return; // unbuffered and less than one chunk: nothing can go out yet
        buffer.clear().limit(n);
        drain(buffer);
        if (n < bufferPos) MemorySegment.copy(bufferSegment, n, bufferSegment, 0, bufferPos - n);
        bufferPos -= n;
    }

    /** Writes out everything buffered; unbuffered, the last chunk is padded with zeros (cut off by truncate). */
    private void flushAll() {
        flush();
        if (bufferPos == 0) return;
        int end = (bufferPos + DIRECT_ALIGN - 1) & -DIRECT_ALIGN;
        bufferSegment.asSlice(bufferPos, end - bufferPos).fill((byte) 0);
        buffer.clear().limit(end);
        bufferPos = 0;
        drain(buffer);
    }

    private void drain(ByteBuffer b) {
        try {
            while (b.hasRemaining()) {
                if (out.write(b) < 0) throw new IOException("the channel refused to write");
            }
        } catch (IOException e) {
            throw new Moe4jException("writing " + target + " failed (at byte " + written + " of "
                    + (headerEnd + dataBytes) + "): " + e.getMessage(), e);
        }
    }

    /** The sink a producer writes one tensor into; refuses more bytes than the tensor has. */
    private final class Output implements TensorOutput {
        private final Declared tensor;
        private final long start;
        boolean closed;

        Output(Declared tensor, long start) {
            this.tensor = tensor;
            this.start = start;
        }

        private void reserve(long n) {
            if (closed) throw new ModelFormatException(target + ": the output of tensor '" + tensor.name + "' was used after its producer returned");
            if (state != State.WRITING) requireUsable("write the data of tensor '" + tensor.name + "'");
            if (n > remaining()) {
                throw fail(new ModelFormatException(target + ": tensor " + tensor.describe() + " needs " + tensor.byteSize
                        + " bytes, its producer wrote " + (written - start + n) + " or more"));
            }
        }

        @Override
        public void write(MemorySegment src) {
            reserve(src.byteSize());
            try {
                put(src);
            } catch (RuntimeException e) {
                throw fail(e);
            }
        }

        @Override
        public void write(ByteBuffer src) {
            write(MemorySegment.ofBuffer(src));
        }

        @Override
        public void write(byte[] src, int offset, int length) {
            write(MemorySegment.ofArray(src).asSlice(offset, length));
        }

        @Override
        public long remaining() {
            return tensor.byteSize - (written - start);
        }
    }

    /** A growable little-endian byte array for the header. */
    private static final class Le {
        byte[] bytes = new byte[1 << 16];
        int size;

        private void ensure(long n) {
            if (size + n > Integer.MAX_VALUE - 16) throw new ModelFormatException("GGUF header (metadata and tensor infos) over 2 GiB");
            if (size + n > bytes.length) bytes = Arrays.copyOf(bytes, (int) Math.min(Integer.MAX_VALUE - 16, Math.max(size + n, 2L * bytes.length)));
        }

        Le i8(int v) {
            ensure(1);
            bytes[size++] = (byte) v;
            return this;
        }

        Le i16(int v) {
            ensure(2);
            bytes[size++] = (byte) v;
            bytes[size++] = (byte) (v >>> 8);
            return this;
        }

        Le i32(int v) {
            ensure(4);
            for (int i = 0; i < 4; i++) bytes[size++] = (byte) (v >>> (8 * i));
            return this;
        }

        Le i64(long v) {
            ensure(8);
            for (int i = 0; i < 8; i++) bytes[size++] = (byte) (v >>> (8 * i));
            return this;
        }

        Le str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            ensure(b.length);
            System.arraycopy(b, 0, bytes, size, b.length);
            size += b.length;
            return this;
        }
    }
}
