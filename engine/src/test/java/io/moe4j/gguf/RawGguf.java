package io.moe4j.gguf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/** Builds GGUF bytes field by field (little-endian), broken ones included, with named marks for truncation points. */
final class RawGguf {
    static final int F32 = 0;
    static final int Q8_0 = 8;
    static final int T_UINT32 = 4;
    static final int T_INT32 = 5;
    static final int T_FLOAT32 = 6;
    static final int T_BOOL = 7;
    static final int T_STRING = 8;
    static final int T_ARRAY = 9;

    private byte[] bytes = new byte[256];
    private int size;
    final Map<String, Integer> marks = new HashMap<>();

    private void ensure(int n) {
        if (size + n > bytes.length) bytes = Arrays.copyOf(bytes, Math.max(size + n, bytes.length * 2));
    }

    RawGguf u8(int v) {
        ensure(1);
        bytes[size++] = (byte) v;
        return this;
    }

    RawGguf u32(long v) {
        for (int i = 0; i < 4; i++) u8((int) (v >>> (8 * i)));
        return this;
    }

    RawGguf u64(long v) {
        for (int i = 0; i < 8; i++) u8((int) (v >>> (8 * i)));
        return this;
    }

    RawGguf str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        u64(b.length);
        return raw(b);
    }

    RawGguf raw(byte[] b) {
        ensure(b.length);
        System.arraycopy(b, 0, bytes, size, b.length);
        size += b.length;
        return this;
    }

    RawGguf zeros(int n) {
        return raw(new byte[n]);
    }

    /** Zero padding up to a multiple of {@code alignment}. */
    RawGguf pad(int alignment) {
        while (size % alignment != 0) u8(0);
        return this;
    }

    RawGguf mark(String name) {
        marks.put(name, size);
        return this;
    }

    int mark(String name, int plus) {
        return marks.get(name) + plus;
    }

    int size() {
        return size;
    }

    /** GGUF header: magic, version, tensor count, key/value count. */
    RawGguf header(int version, long tensorCount, long kvCount) {
        return raw("GGUF".getBytes(StandardCharsets.US_ASCII)).u32(version).u64(tensorCount).u64(kvCount);
    }

    RawGguf kvString(String key, String value) {
        return str(key).u32(T_STRING).str(value);
    }

    RawGguf kvU32(String key, long value) {
        return str(key).u32(T_UINT32).u32(value);
    }

    RawGguf tensorInfo(String name, int typeId, long offset, long... dims) {
        str(name).u32(dims.length);
        for (long d : dims) u64(d);
        return u32(typeId).u64(offset);
    }

    byte[] bytes() {
        return Arrays.copyOf(bytes, size);
    }

    byte[] bytes(int length) {
        return Arrays.copyOf(bytes, length);
    }

    Path write(Path dir, String name) {
        return write(dir, name, bytes());
    }

    static Path write(Path dir, String name, byte[] content) {
        try {
            return Files.write(dir.resolve(name), content);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A valid file: 3 metadata keys (a string, an INT32 array, a bool), tensors 'a' F32 [8, 2] at 0 and 'b' F32 [8]
     * at 64, data padded to 32. Marks: kv, kv.arch.value, kv.array.values, tensors, tensor.b, tensor.b.dims,
     * padding, data, data.b, end.
     */
    static RawGguf valid() {
        RawGguf r = new RawGguf().header(3, 2, 3).mark("kv");
        r.str("general.architecture").u32(T_STRING).mark("kv.arch.value").str("llama");
        r.str("test.array").u32(T_ARRAY).u32(T_INT32).u64(4).mark("kv.array.values").u32(1).u32(2).u32(3).u32(4);
        r.str("test.flag").u32(T_BOOL).u8(1);
        r.mark("tensors").tensorInfo("a", F32, 0, 8, 2);
        r.mark("tensor.b").str("b").u32(1).mark("tensor.b.dims").u64(8).u32(F32).u64(64);
        r.mark("padding").pad(32).mark("data");
        for (int i = 0; i < 16; i++) r.u32(Float.floatToIntBits(i));
        r.mark("data.b");
        for (int i = 0; i < 8; i++) r.u32(Float.floatToIntBits(-i));
        return r.mark("end");
    }
}
