package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.gguf.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file, memory-mapped read-only: an 8-byte little-endian header length, a JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}}, then the data, each
 * tensor row-major (last dimension contiguous) at its offsets relative to the end of the header. Everything is
 * checked on open: header size, dtypes, that each tensor's byte range matches its shape and lies inside the file.
 */
public final class SafetensorsFile implements AutoCloseable {
    static final long MAX_HEADER = 100L << 20;

    /** One tensor: its row-major shape and its bytes (a slice of the mapping). */
    public record Entry(String name, DType dtype, long[] shape, MemorySegment data) {
        public long elements() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        @Override
        public String toString() {
            return name + " " + dtype + " " + Arrays.toString(shape);
        }
    }

    private final Path path;
    private final Arena arena;
    private final Map<String, Entry> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file) {
        this.path = path;
        this.arena = arena;
        long size = file.byteSize();
        if (size < 8) throw error("truncated: " + size + " bytes, too short for the 8-byte header length");
        long n = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 2 || n > MAX_HEADER) throw error("header length " + n + " is absurd (not a safetensors file?)");
        if (8 + n > size) throw error("truncated: the header needs " + n + " bytes, the file has " + (size - 8) + " after the length");
        JsonNode header;
        try {
            byte[] h = file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            header = new ObjectMapper().readTree(new String(h, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw error("the JSON header is malformed: " + e.getMessage());
        }
        if (header == null || !header.isObject()) throw error("the header is not a JSON object");
        long dataStart = 8 + n, dataSize = size - dataStart;
        Map<String, Entry> t = new LinkedHashMap<>();
        Map<String, String> md = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals("__metadata__")) {
                if (v.isObject()) v.fields().forEachRemaining(m -> md.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            if (!v.has("dtype") || !v.has("shape") || !v.has("data_offsets")) {
                throw error("tensor '" + name + "' lacks dtype, shape or data_offsets");
            }
            DType dt = DType.parse(v.get("dtype").asText(), path + " tensor '" + name + "'");
            JsonNode sh = v.get("shape");
            long[] shape = new long[sh.size()];
            long elements = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = sh.get(i).asLong(-1);
                if (shape[i] < 0) throw error("tensor '" + name + "' has a negative dimension");
                elements = Math.multiplyExact(elements, shape[i]);
            }
            JsonNode off = v.get("data_offsets");
            if (off.size() != 2) throw error("tensor '" + name + "' data_offsets must be [begin, end]");
            long begin = off.get(0).asLong(-1), end = off.get(1).asLong(-1);
            if (begin < 0 || end < begin || end > dataSize) {
                throw error("tensor '" + name + "' data_offsets [" + begin + ", " + end + "] lie outside the "
                        + dataSize + " data bytes: the file is truncated or corrupt");
            }
            if (end - begin != elements * dt.bytes) {
                throw error("tensor '" + name + "' " + dt + " " + Arrays.toString(shape) + " needs " + elements * dt.bytes
                        + " bytes, its data_offsets give " + (end - begin));
            }
            t.put(name, new Entry(name, dt, shape, file.asSlice(dataStart + begin, end - begin)));
        }
        this.tensors = Collections.unmodifiableMap(t);
        this.metadata = Collections.unmodifiableMap(md);
        checkNoOverlap();
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.size() == 0 ? MemorySegment.NULL.reinterpret(0) : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new SafetensorsFile(path, arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException("safetensors file not found: " + path);
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException("cannot read " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            if (e instanceof ArithmeticException) throw new ModelFormatException(path + ": a tensor shape overflows");
            throw e;
        }
    }

    private void checkNoOverlap() {
        List<Entry> sorted = new ArrayList<>(tensors.values());
        sorted.removeIf(e -> e.data().byteSize() == 0);
        sorted.sort(Comparator.comparingLong(e -> e.data().address()));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1), b = sorted.get(i);
            if (a.data().address() + a.data().byteSize() > b.data().address()) {
                throw error("tensors '" + a.name() + "' and '" + b.name() + "' overlap");
            }
        }
    }

    private ModelFormatException error(String what) {
        return new ModelFormatException(path + ": " + what);
    }

    public Path path() {
        return path;
    }

    public Map<String, Entry> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public void close() {
        arena.close();
    }
}
