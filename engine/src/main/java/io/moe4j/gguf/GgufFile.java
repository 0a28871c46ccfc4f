package io.moe4j.gguf;

import io.moe4j.kernels.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.TreeMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF v2/v3 file, memory-mapped read-only. Header, metadata and tensor infos are parsed and validated on open;
 * tensor data stays in the mapping (only pages that are touched are read from disk).
 *
 * <p>Every malformed input ends in a {@link ModelFormatException} naming the file, the byte offset and what was
 * expected: counts and lengths are checked against the bytes left before anything is allocated.
 */
public final class GgufFile implements AutoCloseable {
    static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4;
    static final int MAX_NESTING = 4;
    /** Tensor element counts beyond this are absurd for any model (2^50 elements). */
    static final long MAX_ELEMENTS = 1L << 50;
    /** Sanity limits that keep a corrupt count or length from allocating gigabytes of heap before it is found out. */
    static final long MAX_TENSORS = 1L << 20;
    static final long MAX_KEYS = 1L << 20;
    static final long MAX_ARRAY_LENGTH = 1L << 26;
    static final long MAX_STRING_BYTES = 1L << 26;
    static final long MAX_NAME_BYTES = 1L << 16;

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final String name;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final GgufMetadata metadata;
    private final Map<String, GgufTensor> tensors;
    private final long alignment;
    private final long dataStart;
    private long pos;

    private GgufFile(Path path, Arena arena, MemorySegment file) {
        this.path = path;
        this.name = path.toString();
        this.arena = arena;
        this.file = file;

        if (file.byteSize() == 0) throw error(0, "empty file (0 bytes), not a GGUF file");
        if (file.byteSize() < 4) throw error(0, "truncated: " + file.byteSize() + " bytes, too short for the GGUF magic");
        int magic = readI32("magic");
        if (magic != MAGIC) {
            throw error(0, String.format("not a GGUF file: magic is 0x%08X, expected 0x%08X (\"GGUF\")", magic, MAGIC));
        }
        int v = readI32("version");
        if (v == 0x03000000 || v == 0x02000000) {
            throw error(4, "big-endian GGUF files are not supported");
        }
        if (v != 2 && v != 3) {
            throw error(4, "unsupported GGUF version " + Integer.toUnsignedString(v) + " (supported: 2, 3)");
        }
        this.version = v;
        // Only checked against sanity limits here (nothing is allocated by count): a truncation is reported more
        // precisely where it is met.
        long tensorCount = readCount("tensor count", 1, MAX_TENSORS);
        long kvCount = readCount("metadata key/value count", 1, MAX_KEYS);

        Map<String, GgufValue> kv = new LinkedHashMap<>();
        String prevKey = null;
        for (long i = 0; i < kvCount; i++) {
            long at = pos;
            String key = readString("metadata key #" + i + (prevKey == null ? "" : " (after '" + prevKey + "')"), MAX_NAME_BYTES);
            if (key.isEmpty()) throw error(at, "metadata key #" + i + " is empty");
            prevKey = key;
            long typeAt = pos;
            GgufValueType type = GgufValueType.byId(Integer.toUnsignedLong(readI32("value type of metadata key '" + key + "'")));
            if (type == null) {
                throw error(typeAt, "metadata key '" + key + "' has unknown value type " + Integer.toUnsignedString(file.get(I32, typeAt)));
            }
            if (kv.put(key, readValue(type, key, 0)) != null) throw error(at, "duplicate metadata key '" + key + "'");
        }
        this.metadata = new GgufMetadata(name, kv);

        this.alignment = metadata.has("general.alignment") ? metadata.getLong("general.alignment") : DEFAULT_ALIGNMENT;
        if (alignment <= 0 || alignment > (1 << 20) || Long.bitCount(alignment) != 1) {
            throw new ModelFormatException(name + ": general.alignment = " + alignment + " is invalid: it must be a power of two from 1 to 2^20");
        }

        List<long[]> pending = new ArrayList<>(); // {offset, nDims, dims..., type}
        List<String> names = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            long at = pos;
            String tname = readString("name of tensor #" + i, MAX_NAME_BYTES);
            if (tname.isEmpty()) throw error(at, "the name of tensor #" + i + " is empty");
            int nDims = readI32("dimension count of tensor '" + tname + "'");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw error(at, "tensor '" + tname + "' has " + Integer.toUnsignedString(nDims) + " dimensions, expected 1 to " + MAX_DIMS);
            }
            long[] rec = new long[nDims + 3];
            rec[1] = nDims;
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                long dimAt = pos;
                long dim = readI64("dimension " + d + " of tensor '" + tname + "'");
                if (dim <= 0 || dim > MAX_ELEMENTS) {
                    throw error(dimAt, "tensor '" + tname + "' dimension " + d + " is " + Long.toUnsignedString(dim)
                            + (dim < 0 ? " (" + dim + " as a signed number)" : "") + ", expected 1 to 2^50");
                }
                elements = multiplyChecked(elements, dim, tname, dimAt);
                rec[2 + d] = dim;
            }
            long typeAt = pos;
            long typeId = Integer.toUnsignedLong(readI32("type of tensor '" + tname + "'"));
            rec[2 + nDims] = typeId;
            GgmlType type = GgmlType.byId(typeId);
            if (type == null) throw error(typeAt, "tensor '" + tname + "' has unknown ggml type id " + typeId);
            if (rec[2] % type.blockSize != 0) {
                throw error(at, "tensor '" + tname + "' of type " + type + " has a first dimension of " + rec[2]
                        + ", not a multiple of the block size " + type.blockSize);
            }
            rec[0] = readI64("data offset of tensor '" + tname + "'");
            Integer first = seen.putIfAbsent(tname, (int) i);
            if (first != null) throw error(at, "duplicate tensor name '" + tname + "' (tensors #" + first + " and #" + i + ")");
            names.add(tname);
            pending.add(rec);
        }
        this.dataStart = alignUp(pos, alignment);
        if (dataStart > file.byteSize() && tensorCount > 0) {
            throw error(pos, "truncated: tensor data should start at byte " + dataStart + " but the file has " + file.byteSize() + " bytes");
        }

        Map<String, GgufTensor> byName = new LinkedHashMap<>();
        for (int i = 0; i < pending.size(); i++) {
            long[] rec = pending.get(i);
            String tname = names.get(i);
            int nDims = (int) rec[1];
            long[] dims = new long[nDims];
            System.arraycopy(rec, 2, dims, 0, nDims);
            GgmlType type = GgmlType.byId(rec[2 + nDims]);
            long elements = 1;
            for (long d : dims) elements *= d;
            long size = type.bytesFor(elements);
            long offset = rec[0];
            if (offset < 0 || offset > file.byteSize() - dataStart) {
                throw new ModelFormatException(name + ": tensor '" + tname + "' data offset " + Long.toUnsignedString(offset)
                        + " is past the end of the file (tensor data starts at byte " + dataStart + ", the file has "
                        + file.byteSize() + " bytes): the file is truncated or the offset is wrong");
            }
            if (offset % alignment != 0) {
                throw new ModelFormatException(name + ": tensor '" + tname + "' data offset " + offset
                        + " is not a multiple of the alignment " + alignment);
            }
            long end = dataStart + offset + size;
            if (end > file.byteSize()) {
                throw new ModelFormatException(name + ": tensor '" + tname + "' (" + type + ", " + size + " bytes at data offset "
                        + offset + ") ends at byte " + end + ", past the end of the file (" + file.byteSize()
                        + " bytes): the file is truncated or the offset is wrong");
            }
            // Types without kernels (!type.supported) are listed, not rejected: inspect can still show such a file.
            GgufTensor t = new GgufTensor(tname, dims, type, offset, size, file.asSlice(dataStart + offset, size));
            if (byName.put(tname, t) != null) throw new ModelFormatException(name + ": duplicate tensor name '" + tname + "'");
        }
        checkNoOverlap(byName.values());
        this.tensors = Collections.unmodifiableMap(byName);
    }

    /** Opens and validates a GGUF file. The mapping lives until {@link #close()}. */
    public static GgufFile open(Path path) {
        if (Files.isDirectory(path)) throw new ModelFormatException(path + " is a directory, not a GGUF model file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.size() == 0 ? MemorySegment.NULL.reinterpret(0)
                    : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new GgufFile(path, arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException("model file not found: " + path);
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException("cannot read model file " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    public GgufMetadata metadata() {
        return metadata;
    }

    public Map<String, GgufTensor> tensors() {
        return tensors;
    }

    public long alignment() {
        return alignment;
    }

    public long dataStart() {
        return dataStart;
    }

    public long fileSize() {
        return file.byteSize();
    }

    /** The whole file's read-only mapping; every tensor's {@code data()} is a slice of it. */
    public MemorySegment mapping() {
        return file;
    }

    /**
     * A one-line summary for logs and error messages, e.g. {@code model.gguf: GGUF v3, 26 metadata keys, 23 tensors
     * (F32 x 7, Q8_0 x 16), 2.2 MiB of tensor data, alignment 32}.
     */
    public String describe() {
        Map<GgmlType, Integer> byType = new TreeMap<>();
        long bytes = 0;
        for (GgufTensor t : tensors.values()) {
            byType.merge(t.type(), 1, Integer::sum);
            bytes += t.byteSize();
        }
        StringBuilder sb = new StringBuilder();
        sb.append(path.getFileName()).append(": GGUF v").append(version).append(", ").append(metadata.keys().size())
                .append(" metadata keys, ").append(tensors.size()).append(" tensors");
        if (!byType.isEmpty()) {
            sb.append(" (");
            boolean firstType = true;
            for (Map.Entry<GgmlType, Integer> e : byType.entrySet()) {
                if (!firstType) sb.append(", ");
                sb.append(e.getKey()).append(" x ").append(e.getValue());
                firstType = false;
            }
            sb.append(')');
        }
        sb.append(", ").append(String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0)).append(" of tensor data, alignment ")
                .append(alignment);
        return sb.toString();
    }

    public GgufTensor tensor(String tensorName) {
        return tensors.get(tensorName);
    }

    public GgufTensor requireTensor(String tensorName) {
        GgufTensor t = tensors.get(tensorName);
        if (t == null) throw new ModelFormatException(name + ": required tensor '" + tensorName + "' is missing");
        return t;
    }

    /**
     * The arena of the file's mapping: memory allocated here (copies of tensors in another layout, such as the
     * kernels' interleaved one) lives exactly as long as the mapping and is freed by {@link #close()}.
     */
    public Arena arena() {
        return arena;
    }

    @Override
    public void close() {
        arena.close();
    }

    // ---- parsing helpers: every read is bounds-checked against the file size ----

    private ModelFormatException error(long at, String what) {
        return new ModelFormatException(name + " (byte " + at + "): " + what);
    }

    private void need(long n, String what) {
        if (n > file.byteSize() - pos) {
            throw error(pos, "truncated: " + what + " needs " + n + " bytes, only " + (file.byteSize() - pos) + " are left");
        }
    }

    private int readI32(String what) {
        need(4, what);
        int v = file.get(I32, pos);
        pos += 4;
        return v;
    }

    private long readI64(String what) {
        need(8, what);
        long v = file.get(I64, pos);
        pos += 8;
        return v;
    }

    /**
     * A u64 count of items taking at least {@code minItemBytes} each: absurd (corrupt) when negative or over
     * {@code max}, truncated when the bytes left cannot hold that many items.
     */
    private long readCount(String what, long minItemBytes, long max) {
        long at = pos;
        long n = readI64(what);
        long left = file.byteSize() - pos;
        if (n < 0 || n > max) {
            throw error(at, what + " is " + Long.toUnsignedString(n) + ", which is absurd (the limit is " + max + ")");
        }
        if (n > left / minItemBytes) {
            throw error(at, what + " is " + n + ", more than the " + left + " bytes left can hold (at most "
                    + left / minItemBytes + "): the file is truncated or the count is corrupt");
        }
        return n;
    }

    /** A string: its length is absurd when negative or over {@code max}, truncated when past the end of the file. */
    private String readString(String what, long max) {
        long at = pos;
        long len = readI64("length of " + what);
        long left = file.byteSize() - pos;
        if (len < 0 || len > max) {
            throw error(at, "length of " + what + " is " + Long.toUnsignedString(len) + " bytes, which is absurd (the limit is " + max + ")");
        }
        if (len > left) {
            throw error(at, what + " is " + len + " bytes long, only " + left + " bytes are left: the file is truncated or the length is corrupt");
        }
        byte[] bytes = file.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private GgufValue readValue(GgufValueType type, String key, int depth) {
        String what = "value of '" + key + "'";
        return switch (type) {
            case ARRAY -> readArray(key, depth);
            case STRING -> new GgufValue(type, null, readString(what, MAX_STRING_BYTES));
            case FLOAT32 -> { need(4, what); float v = file.get(F32, pos); pos += 4; yield new GgufValue(type, null, v); }
            case FLOAT64 -> { need(8, what); double v = file.get(F64, pos); pos += 8; yield new GgufValue(type, null, v); }
            case BOOL -> new GgufValue(type, null, readBool(key, what));
            default -> new GgufValue(type, null, readInteger(type, what));
        };
    }

    /** An integer value as a long: signed types sign-extended, unsigned ones zero-extended (u64: its bit pattern). */
    private long readInteger(GgufValueType type, String what) {
        need(type.minBytes, what);
        long v = switch (type) {
            case UINT8 -> file.get(ValueLayout.JAVA_BYTE, pos) & 0xFFL;
            case INT8 -> file.get(ValueLayout.JAVA_BYTE, pos);
            case UINT16 -> file.get(I16, pos) & 0xFFFFL;
            case INT16 -> file.get(I16, pos);
            case UINT32 -> file.get(I32, pos) & 0xFFFF_FFFFL;
            case INT32 -> file.get(I32, pos);
            case UINT64, INT64 -> file.get(I64, pos);
            default -> throw new IllegalStateException(type.toString());
        };
        pos += type.minBytes;
        return v;
    }

    private boolean readBool(String key, String what) {
        need(1, what);
        byte b = file.get(ValueLayout.JAVA_BYTE, pos);
        if (b != 0 && b != 1) throw error(pos, "metadata key '" + key + "' has BOOL value " + b + ", expected 0 or 1");
        pos++;
        return b == 1;
    }

    private GgufValue readArray(String key, int depth) {
        if (depth >= MAX_NESTING) throw error(pos, "metadata key '" + key + "' nests arrays deeper than " + MAX_NESTING);
        long typeAt = pos;
        GgufValueType et = GgufValueType.byId(Integer.toUnsignedLong(readI32("element type of array '" + key + "'")));
        if (et == null) {
            throw error(typeAt, "metadata key '" + key + "' is an array of unknown value type " + Integer.toUnsignedString(file.get(I32, typeAt)));
        }
        int n = (int) readCount("element count of array '" + key + "'", et.minBytes, MAX_ARRAY_LENGTH);
        String what = "array '" + key + "' (" + n + " x " + et + ")";
        Object values = switch (et) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32 -> {
                int[] a = new int[n];
                for (int i = 0; i < n; i++) a[i] = (int) readInteger(et, what);
                yield a;
            }
            case UINT64, INT64 -> {
                need(8L * n, what);
                long[] a = file.asSlice(pos, 8L * n).toArray(I64);
                pos += 8L * n;
                yield a;
            }
            case FLOAT32 -> {
                need(4L * n, what);
                float[] a = file.asSlice(pos, 4L * n).toArray(F32);
                pos += 4L * n;
                yield a;
            }
            case FLOAT64 -> {
                need(8L * n, what);
                double[] a = file.asSlice(pos, 8L * n).toArray(F64);
                pos += 8L * n;
                yield a;
            }
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) a[i] = readBool(key + "[" + i + "]", what);
                yield a;
            }
            case STRING -> {
                String[] a = new String[n];
                for (int i = 0; i < n; i++) a[i] = readString("element " + i + " of " + what, MAX_STRING_BYTES);
                yield a;
            }
            case ARRAY -> {
                GgufValue[] a = new GgufValue[n];
                for (int i = 0; i < n; i++) a[i] = readArray(key + "[" + i + "]", depth + 1);
                yield a;
            }
        };
        return new GgufValue(GgufValueType.ARRAY, et, values);
    }

    private long multiplyChecked(long a, long b, String tname, long at) {
        try {
            long r = Math.multiplyExact(a, b);
            if (r > MAX_ELEMENTS) throw new ArithmeticException();
            return r;
        } catch (ArithmeticException e) {
            throw error(at, "tensor '" + tname + "' has an absurd element count (over 2^50)");
        }
    }

    private void checkNoOverlap(java.util.Collection<GgufTensor> all) {
        List<GgufTensor> sorted = new ArrayList<>(all);
        sorted.sort(Comparator.comparingLong(GgufTensor::offset));
        for (int i = 1; i < sorted.size(); i++) {
            GgufTensor prev = sorted.get(i - 1), cur = sorted.get(i);
            if (prev.offset() + prev.byteSize() > cur.offset()) {
                throw new ModelFormatException(name + ": tensors '" + prev.name() + "' (data bytes " + prev.offset() + ".."
                        + (prev.offset() + prev.byteSize()) + ") and '" + cur.name() + "' (from " + cur.offset() + ") overlap");
            }
        }
    }

    static long alignUp(long x, long a) {
        return (x + a - 1) / a * a;
    }
}
