package io.moe4j.gguf;

import io.moe4j.Moe4jException;
import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufWriterTest {

    @TempDir
    Path dir;

    private static GgufValue v(GgufValueType t, Object value) {
        return GgufValue.scalar(t, value);
    }

    private static GgufValue arr(GgufValueType et, Object values) {
        return GgufValue.array(et, values);
    }

    private static Map<String, GgufValue> arch() {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("general.architecture", GgufValue.of("llama"));
        return md;
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (i * 31 + seed);
        return b;
    }

    /** Files in the test folder: a failed write must leave no temporary file behind. */
    private List<String> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void assertMessage(Throwable e, String... fragments) {
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "message \"" + e.getMessage() + "\" lacks \"" + f + "\"");
        }
    }

    private static boolean deepEquals(Object a, Object b) {
        if (a instanceof GgufValue[] x && b instanceof GgufValue[] y) {
            if (x.length != y.length) return false;
            for (int i = 0; i < x.length; i++) {
                if (x[i].type() != y[i].type() || x[i].elementType() != y[i].elementType() || !deepEquals(x[i].value(), y[i].value())) return false;
            }
            return true;
        }
        if (a instanceof float[] x && b instanceof float[] y) {
            if (x.length != y.length) return false;
            for (int i = 0; i < x.length; i++) if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) return false;
            return true;
        }
        return Objects.deepEquals(a, b);
    }

    // ---- metadata ----

    @Test
    void everyMetadataTypeRoundTripsWithItsType() throws IOException {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("u8", v(GgufValueType.UINT8, 255L));
        md.put("i8", v(GgufValueType.INT8, -128L));
        md.put("u16", v(GgufValueType.UINT16, 65535L));
        md.put("i16", v(GgufValueType.INT16, -32768L));
        md.put("u32", v(GgufValueType.UINT32, 0xFFFF_FFFFL));
        md.put("i32", v(GgufValueType.INT32, -5L));
        md.put("u64", v(GgufValueType.UINT64, -1L)); // 2^64 - 1 as its bit pattern
        md.put("i64", v(GgufValueType.INT64, Long.MIN_VALUE));
        md.put("f32", v(GgufValueType.FLOAT32, 1.5f));
        md.put("f64", v(GgufValueType.FLOAT64, Math.PI));
        md.put("bool.t", GgufValue.ofBool(true));
        md.put("bool.f", GgufValue.ofBool(false));
        md.put("str", GgufValue.of("héllo ✓ 𝄞\n\u0000end"));
        md.put("str.empty", GgufValue.of(""));
        md.put("a.u8", arr(GgufValueType.UINT8, new int[] {0, 1, 255}));
        md.put("a.i8", arr(GgufValueType.INT8, new int[] {-128, 127}));
        md.put("a.u16", arr(GgufValueType.UINT16, new int[] {65535}));
        md.put("a.i16", arr(GgufValueType.INT16, new int[] {-1, 2}));
        md.put("a.u32", arr(GgufValueType.UINT32, new int[] {-1, 7}));
        md.put("a.i32", GgufValue.ofArrayI32(new int[] {1, -2, 3}));
        md.put("a.u64", arr(GgufValueType.UINT64, new long[] {-1L, 1L << 40}));
        md.put("a.i64", arr(GgufValueType.INT64, new long[] {Long.MIN_VALUE, Long.MAX_VALUE}));
        md.put("a.f32", GgufValue.ofArray(new float[] {0f, -0f, Float.NaN, Float.MAX_VALUE, Float.intBitsToFloat(0x7FC00123)}));
        md.put("a.f64", arr(GgufValueType.FLOAT64, new double[] {1e300, -0.0}));
        md.put("a.bool", arr(GgufValueType.BOOL, new boolean[] {true, false, true}));
        md.put("a.str", GgufValue.ofArray(new String[] {"<unk>", "", "▁the", "ü"}));
        md.put("a.empty", arr(GgufValueType.INT32, new int[0]));
        md.put("a.empty.str", GgufValue.ofArray(new String[0]));
        md.put("a.nested", arr(GgufValueType.ARRAY, new GgufValue[] {
                GgufValue.ofArrayI32(new int[] {1, 2}), GgufValue.ofArray(new String[] {"x"}), arr(GgufValueType.ARRAY, new GgufValue[] {
                        arr(GgufValueType.ARRAY, new GgufValue[] {arr(GgufValueType.FLOAT64, new double[] {2.5})})})}));
        Path p = dir.resolve("md.gguf");
        try (GgufWriter w = GgufWriter.create(p, md)) {
            assertEquals(p.toAbsolutePath(), w.finish());
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(3, f.version());
            assertEquals(List.copyOf(md.keySet()), List.copyOf(f.metadata().keys()), "key order is kept");
            for (Map.Entry<String, GgufValue> e : md.entrySet()) {
                GgufValue got = f.metadata().get(e.getKey());
                assertEquals(e.getValue().type(), got.type(), e.getKey());
                assertEquals(e.getValue().elementType(), got.elementType(), e.getKey());
                assertTrue(deepEquals(e.getValue().value(), got.value()), () -> e.getKey() + ": " + got.describe());
            }
            assertEquals(0, f.tensors().size());
            // writing what was read gives the same bytes again
            Path again = GgufWriter.copy(f, dir.resolve("again.gguf"));
            assertEquals(-1, Files.mismatch(p, again));
        }
        assertEquals(List.of("again.gguf", "md.gguf"), listing());
    }

    @Test
    void integerBoxesAndLongArraysAreAccepted() {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("n", v(GgufValueType.UINT32, 7));                          // an Integer, not a Long
        md.put("a", arr(GgufValueType.INT16, new long[] {-3, 4}));         // long[] for a narrow type
        md.put("d", v(GgufValueType.FLOAT32, 0.25));                      // a Double for FLOAT32
        Path p = dir.resolve("boxes.gguf");
        try (GgufWriter w = GgufWriter.create(p, md)) {
            w.finish();
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(7, f.metadata().getLong("n"));
            assertArrayEquals(new int[] {-3, 4}, f.metadata().getIntArray("a"));
            assertEquals(GgufValueType.INT16, f.metadata().get("a").elementType());
            assertEquals(0.25, f.metadata().getDouble("d"));
        }
    }

    @Test
    void invalidMetadataIsRefusedUpFrontAndLeavesNothing() throws IOException {
        Object[][] cases = {
                {"k", v(GgufValueType.UINT8, 256L), "metadata key 'k': UINT8 value 256 is out of range"},
                {"k", v(GgufValueType.INT8, 200L), "INT8 value 200 is out of range"},
                {"k", v(GgufValueType.UINT32, 1L << 32), "UINT32 value 4294967296 is out of range"},
                {"k", v(GgufValueType.STRING, 5L), "'k' is declared STRING but holds a Long"},
                {"k", v(GgufValueType.BOOL, 1L), "'k' is declared BOOL but holds a Long"},
                {"k", arr(GgufValueType.FLOAT32, new int[] {1}), "'k' is declared ARRAY but holds a int[]"},
                {"k", arr(GgufValueType.UINT8, new int[] {1, 300}), "'k[1]': UINT8 value 300 is out of range"},
                {"k", arr(null, new int[] {1}), "ARRAY without an element type"},
                {"k", arr(GgufValueType.ARRAY, new GgufValue[] {GgufValue.of("x")}), "element 0 is not an ARRAY value"},
                {"k", GgufValue.ofArray(new String[] {"ok", null}), "'k[1]' has a null STRING value"},
                {"k", v(GgufValueType.STRING, null), "'k' has a null STRING value"},
                {"k", GgufValue.of("bad \uD800 surrogate"), "not valid Unicode"},
                {"", GgufValue.of("x"), "a metadata key is empty"},
                {"general.alignment", GgufValue.ofU32(48), "general.alignment = 48 is invalid: it must be a power of two"},
                {"general.alignment", v(GgufValueType.UINT64, 32L), "'general.alignment' has type UINT64, ggml requires UINT32"},
        };
        for (Object[] c : cases) {
            Map<String, GgufValue> md = new LinkedHashMap<>();
            md.put((String) c[0], (GgufValue) c[1]);
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufWriter.create(dir.resolve("bad.gguf"), md),
                    () -> "accepted " + c[1]);
            assertMessage(e, (String) c[2]);
        }
        GgufValue deep = GgufValue.ofArrayI32(new int[] {1});
        for (int i = 0; i < 4; i++) deep = arr(GgufValueType.ARRAY, new GgufValue[] {deep});
        Map<String, GgufValue> md = Map.of("deep", deep);
        assertMessage(assertThrows(ModelFormatException.class, () -> GgufWriter.create(dir.resolve("bad.gguf"), md)), "nests arrays deeper than 4");
        assertEquals(List.of(), listing());
    }

    // ---- tensors ----

    @Test
    void tensorsFromEverySourceAreAlignedPaddedAndReadBack() throws IOException {
        byte[] q8 = bytes(34 * 4, 1);              // Q8_0 [64, 2]: 4 blocks
        byte[] f16 = bytes(6, 2);                  // F16 [3]: 6 bytes, padded to 32
        float[] f32 = {1f, -2f, 3.5f, Float.NaN, 0f};
        ByteBuffer bb = ByteBuffer.wrap(bytes(40, 3)).position(8); // 32 remaining bytes: F32 [8]
        byte[] nat = bytes(3 << 20, 4);            // 3 MiB, more than the writer's buffer: F32 [786432]
        byte[] produced = bytes(34 * 8 * 7, 5);    // Q8_0 [256, 7], produced in odd-sized pieces
        Path p = dir.resolve("t.gguf");
        try (Arena arena = Arena.ofConfined(); GgufWriter w = GgufWriter.create(p, arch())) {
            w.addTensor("q8", GgmlType.Q8_0, 64, 2)
                    .addTensor("f16", GgmlType.F16, 3)
                    .addTensor("f32", GgmlType.F32, 5)
                    .addTensor("buf", GgmlType.F32, 8)
                    .addTensor("native", GgmlType.F32, 786432)
                    .addTensor("heapseg", GgmlType.F16, 3)
                    .addTensor("produced", GgmlType.Q8_0, 256, 7);
            assertEquals(34 * 8 * 7, w.tensorByteSize("produced"));
            w.writeData("q8", q8);
            w.writeData("f16", f16);
            w.writeData("f32", f32);
            w.writeData("buf", bb);
            assertEquals(8, bb.position(), "the buffer's position is left alone");
            MemorySegment seg = arena.allocate(nat.length);
            MemorySegment.copy(MemorySegment.ofArray(nat), 0, seg, 0, nat.length);
            w.writeData("native", seg);
            w.writeData("heapseg", MemorySegment.ofArray(f16));
            w.writeData("produced", out -> {
                int off = 0;
                int step = 1;
                while (off < produced.length) {
                    int n = Math.min(step, produced.length - off);
                    out.write(produced, off, n);
                    off += n;
                    step = step * 3 + 1;
                }
                assertEquals(0, out.remaining());
            });
            w.finish();
        }
        byte[] file = Files.readAllBytes(p);
        assertEquals(0, file.length % 32, "the last tensor is padded too");
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(0, f.dataStart() % 32);
            long expectedOffset = 0;
            for (GgufTensor t : f.tensors().values()) {
                assertEquals(expectedOffset, t.offset(), t.name());
                long end = f.dataStart() + t.offset() + t.byteSize();
                long next = GgufFile.alignUp(end, 32);
                for (long i = end; i < next; i++) assertEquals(0, file[(int) i], "padding after " + t.name());
                expectedOffset = next - f.dataStart();
            }
            assertArrayEquals(q8, f.requireTensor("q8").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(new long[] {64, 2}, f.requireTensor("q8").dims());
            assertArrayEquals(f16, f.requireTensor("f16").data().toArray(ValueLayout.JAVA_BYTE));
            float[] gotF32 = f.requireTensor("f32").data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
            assertTrue(deepEquals(f32, gotF32));
            assertArrayEquals(Arrays.copyOfRange(bb.array(), 8, 40), f.requireTensor("buf").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(nat, f.requireTensor("native").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(f16, f.requireTensor("heapseg").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(produced, f.requireTensor("produced").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(GgmlType.Q8_0, f.requireTensor("produced").type());
        }
        assertEquals(List.of("t.gguf"), listing());
    }

    /** Writes tensors from every source with odd sizes, through buffered or unbuffered (O_DIRECT) writes. */
    private Path writeMixed(Path file, boolean direct, boolean[] wasDirect) {
        float[] floats = new float[300_001];
        for (int i = 0; i < floats.length; i++) floats[i] = i * 0.5f - 7;
        try (Arena arena = Arena.ofConfined(); GgufWriter w = GgufWriter.create(file, arch(), direct)) {
            MemorySegment big = arena.allocate(3 * (1 << 20) + 333);
            for (long i = 0; i < big.byteSize(); i++) big.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            w.addTensor("a", GgmlType.I8, 5);
            w.addTensor("b", GgmlType.F32, floats.length);
            w.addTensor("c", GgmlType.I8, big.byteSize());
            w.addTensor("d", GgmlType.I8, 2_500_003);
            w.writeData("a", bytes(5, 1));
            w.writeData("b", floats);
            w.writeData("c", big);
            w.writeData("d", out -> {
                for (int k = 0; k < 2_500_003; k += 1001) out.write(bytes(Math.min(1001, 2_500_003 - k), k));
            });
            wasDirect[0] = w.isDirect();
            return w.finish();
        }
    }

    @Test
    void unbufferedWritesGiveTheSameBytes() throws IOException {
        boolean[] direct = new boolean[1], buffered = new boolean[1];
        Path a = writeMixed(dir.resolve("direct.gguf"), true, direct);
        Path b = writeMixed(dir.resolve("buffered.gguf"), false, buffered);
        assertFalse(buffered[0]);
        System.out.println("unbuffered (O_DIRECT) writes " + (direct[0] ? "used" : "not available on this file system: buffered"));
        assertArrayEquals(Files.readAllBytes(b), Files.readAllBytes(a));
        assertEquals(List.of("buffered.gguf", "direct.gguf"), listing());
        try (GgufFile f = GgufFile.open(a)) {
            assertEquals(-7f, f.tensor("b").data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
    }

    @Test
    void generalAlignmentIsHonoured() throws IOException {
        Map<String, GgufValue> md = arch();
        md.put("general.alignment", GgufValue.ofU32(64));
        Path p = dir.resolve("a64.gguf");
        try (GgufWriter w = GgufWriter.create(p, md)) {
            assertEquals(64, w.alignment());
            w.addTensor("x", GgmlType.F32, 3).addTensor("y", GgmlType.F32, 5);
            w.writeData("x", new float[] {1, 2, 3});
            w.writeData("y", new float[] {4, 5, 6, 7, 8});
            w.finish();
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(64, f.alignment());
            assertEquals(0, f.dataStart() % 64);
            assertEquals(64, f.requireTensor("y").offset());
            assertEquals(0, f.fileSize() % 64);
            assertEquals(8f, f.requireTensor("y").data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 4));
        }
        // changed after tensors were declared: the layout follows
        Path q = dir.resolve("a8.gguf");
        try (GgufWriter w = GgufWriter.create(q, arch())) {
            w.addTensor("x", GgmlType.F32, 3).addTensor("y", GgmlType.F32, 5);
            w.putMetadata("general.alignment", GgufValue.ofU32(8));
            w.writeData("x", new float[] {1, 2, 3});
            w.writeData("y", new float[] {4, 5, 6, 7, 8});
            w.finish();
        }
        try (GgufFile f = GgufFile.open(q)) {
            assertEquals(8, f.alignment());
            assertEquals(16, f.requireTensor("y").offset());
        }
    }

    @Test
    void invalidTensorDeclarationsAreRefused() {
        Object[][] cases = {
                {"", GgmlType.F32, new long[] {4}, "a tensor name is empty"},
                {"w", GgmlType.F32, new long[] {}, "tensor 'w' has 0 dimensions, expected 1 to 4"},
                {"w", GgmlType.F32, new long[] {1, 1, 1, 1, 1}, "tensor 'w' has 5 dimensions"},
                {"w", GgmlType.F32, new long[] {4, 0}, "tensor 'w' dimension 1 is 0"},
                {"w", GgmlType.F32, new long[] {-4}, "tensor 'w' dimension 0 is -4"},
                {"w", GgmlType.F32, new long[] {1L << 30, 1L << 30}, "over 2^50 elements"},
                {"w", GgmlType.Q4_K, new long[] {128, 2}, "not a multiple of the block size 256"},
                {"x".repeat(64), GgmlType.F32, new long[] {4}, "is 64 bytes, ggml allows at most 63"},
                {"w", null, new long[] {4}, "tensor 'w' has no type"},
        };
        for (Object[] c : cases) {
            GgufWriter w = GgufWriter.create(dir.resolve("bad.gguf"), arch());
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> w.addTensor((String) c[0], (GgmlType) c[1], (long[]) c[2]));
            assertMessage(e, (String) c[3]);
            assertFalse(Files.exists(dir.resolve("bad.gguf")));
            assertMessage(assertThrows(ModelFormatException.class, w::finish), "aborted");
            w.close();
        }
        GgufWriter w = GgufWriter.create(dir.resolve("dup.gguf"), arch());
        w.addTensor("w", GgmlType.F32, 4);
        assertMessage(assertThrows(ModelFormatException.class, () -> w.addTensor("w", GgmlType.F32, 8)), "duplicate tensor name 'w'");
        w.close();
    }

    // ---- misuse and failures: nothing under the final name, no temporary file left ----

    private GgufWriter twoTensors(Path p) {
        return GgufWriter.create(p, arch()).addTensor("a", GgmlType.F32, 4).addTensor("b", GgmlType.F32, 8);
    }

    @Test
    void wrongByteCountAborts() throws IOException {
        Path p = dir.resolve("count.gguf");
        try (GgufWriter w = twoTensors(p)) {
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("a", new byte[12])),
                    "tensor 'a' (F32 [4], 16 bytes) needs 16 bytes, got 12");
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("a", new byte[16])), "aborted", "needs 16 bytes");
        }
        assertEquals(List.of(), listing());
        try (GgufWriter w = twoTensors(p)) {
            w.writeData("a", new byte[16]);
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("b", out -> out.write(new byte[20]))),
                    "tensor 'b' (F32 [8], 32 bytes) needs 32 bytes, its producer wrote 20");
        }
        assertEquals(List.of(), listing());
        try (GgufWriter w = twoTensors(p)) {
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("a", out -> {
                out.write(new byte[10]);
                out.write(new byte[10]);
            })), "tensor 'a' (F32 [4], 16 bytes) needs 16 bytes, its producer wrote 20 or more");
        }
        assertEquals(List.of(), listing());
    }

    @Test
    void outOfOrderUnknownAndRepeatedTensorsAbort() throws IOException {
        Path p = dir.resolve("order.gguf");
        try (GgufWriter w = twoTensors(p)) {
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("b", new byte[32])),
                    "tensor 'b' (tensor #1) written out of order", "tensor 'a' (F32 [4], 16 bytes) (tensor #0) must come first");
        }
        try (GgufWriter w = twoTensors(p)) {
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("c", new byte[32])), "tensor 'c': it was not declared");
        }
        try (GgufWriter w = twoTensors(p)) {
            w.writeData("a", new byte[16]);
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("a", new byte[16])), "tensor 'a' was already written");
        }
        try (GgufWriter w = twoTensors(p)) {
            w.writeData("a", new byte[16]);
            assertMessage(assertThrows(ModelFormatException.class, () -> w.addTensor("c", GgmlType.F32, 4)),
                    "cannot declare tensor 'c' after tensor data has been written");
        }
        assertEquals(List.of(), listing());
    }

    @Test
    void missingTensorDataAbortsFinish() throws IOException {
        Path p = dir.resolve("missing.gguf");
        try (GgufWriter w = twoTensors(p).addTensor("c", GgmlType.F32, 4)) {
            w.writeData("a", new byte[16]);
            assertMessage(assertThrows(ModelFormatException.class, w::finish),
                    "the data of tensor 'b' (F32 [8], 32 bytes) (tensor #1 of 3) was never written, nor that of the 1 tensors after it");
        }
        assertEquals(List.of(), listing());
    }

    /** A channel that accepts {@code limit} bytes, then fails as a full disk does. */
    private static UnaryOperator<WritableByteChannel> fullAfter(long limit) {
        return ch -> new WritableByteChannel() {
            long written;

            @Override
            public int write(ByteBuffer src) throws IOException {
                if (written + src.remaining() > limit) throw new IOException("No space left on device");
                written += src.remaining();
                return ch.write(src);
            }

            @Override
            public boolean isOpen() {
                return ch.isOpen();
            }

            @Override
            public void close() throws IOException {
                ch.close();
            }
        };
    }

    @Test
    void diskFullAbortsAndKeepsTheExistingFile() throws IOException {
        Path p = dir.resolve("full.gguf");
        Files.writeString(p, "previous version");
        byte[] big = bytes(4 << 20, 9);
        for (long limit : new long[] {0, 100, 3 << 20}) {
            try (GgufWriter w = GgufWriter.create(p, arch(), fullAfter(limit))) {
                w.addTensor("small", GgmlType.F32, 8).addTensor("big", GgmlType.F32, 1 << 20);
                Moe4jException e = assertThrows(Moe4jException.class, () -> {
                    w.writeData("small", new byte[32]);
                    w.writeData("big", big);
                    w.finish();
                });
                assertMessage(e, "writing " + p.toAbsolutePath(), "failed", "No space left on device");
                assertInstanceOf(IOException.class, e.getCause());
            }
            assertEquals(List.of("full.gguf"), listing());
            assertEquals("previous version", Files.readString(p));
        }
        try (GgufWriter w = GgufWriter.create(p, arch())) {
            w.finish();
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals("llama", f.metadata().getString("general.architecture"), "a successful write replaces the old file");
        }
    }

    @Test
    void producerFailureAborts() throws IOException {
        Path p = dir.resolve("producer.gguf");
        try (GgufWriter w = twoTensors(p)) {
            Moe4jException e = assertThrows(Moe4jException.class, () -> w.writeData("a", out -> {
                out.write(new byte[8]);
                throw new IOException("source shard unreadable");
            }));
            assertMessage(e, "producing the data of tensor 'a' failed", "source shard unreadable");
        }
        try (GgufWriter w = twoTensors(p)) {
            assertThrows(ArithmeticException.class, () -> w.writeData("a", out -> {
                throw new ArithmeticException("bug in a quantizer");
            }));
            assertMessage(assertThrows(ModelFormatException.class, () -> w.writeData("a", new byte[16])), "aborted", "bug in a quantizer");
        }
        assertEquals(List.of(), listing());
    }

    @Test
    void closeWithoutFinishLeavesNothingAndFinishIsFinal() throws IOException {
        Path p = dir.resolve("close.gguf");
        try (GgufWriter w = twoTensors(p)) {
            w.writeData("a", new byte[16]);
        }
        assertEquals(List.of(), listing());
        GgufWriter w = twoTensors(p);
        w.writeData("a", new byte[16]);
        w.writeData("b", new byte[32]);
        Path done = w.finish();
        assertEquals(done, w.finish());
        w.close();
        assertMessage(assertThrows(ModelFormatException.class, () -> w.putMetadata("x", GgufValue.of("y"))), "already finished");
        assertEquals(List.of("close.gguf"), listing());
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.tensors().size());
        }
    }

    @Test
    void copyOfARawFileIsByteIdentical() {
        Path src = RawGguf.valid().write(dir, "raw.gguf");
        try (GgufFile f = GgufFile.open(src)) {
            Path copy = GgufWriter.copy(f, dir.resolve("copy.gguf"));
            assertEquals(-1, assertDoesNotThrowMismatch(src, copy));
        }
    }

    private static long assertDoesNotThrowMismatch(Path a, Path b) {
        try {
            return Files.mismatch(a, b);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void missingFolderIsAClearError() {
        assertMessage(assertThrows(Moe4jException.class, () -> GgufWriter.create(dir.resolve("no/such/x.gguf"), arch())), "does not exist");
        assertMessage(assertThrows(Moe4jException.class, () -> GgufWriter.create(dir, arch())), "it is a folder");
    }
}
