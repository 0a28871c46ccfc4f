package io.moe4j.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Broken GGUF files, built byte by byte: each must be refused with a {@link ModelFormatException} whose message names
 * the problem (never an IndexOutOfBounds, NegativeArraySize, OutOfMemoryError, IllegalArgumentException...).
 */
class GgufMalformedTest {

    @TempDir
    Path dir;

    private static ModelFormatException rejects(Path file, String... fragments) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> {
            try (GgufFile f = GgufFile.open(file)) {
                fail("opened a broken file: " + f.describe());
            }
        });
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), () -> "message \"" + e.getMessage() + "\" lacks \"" + fragment + "\"");
        }
        assertTrue(e.getMessage().contains(file.toString()), () -> "message \"" + e.getMessage() + "\" does not name the file");
        return e;
    }

    private Path write(String name, byte[] content) {
        return RawGguf.write(dir, name, content);
    }

    /** One metadata key and one tensor with {@code dataBytes} of data after the aligned header. */
    private Path oneTensor(String file, int typeId, long offset, long dataBytes, long... dims) {
        RawGguf r = new RawGguf().header(3, 1, 1).kvString("general.architecture", "llama");
        r.tensorInfo("blk.0.w", typeId, offset, dims).pad(32).zeros((int) dataBytes);
        return r.write(dir, file);
    }

    @Test
    void validSampleOpens() {
        Path p = RawGguf.valid().write(dir, "valid.gguf");
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals("llama", f.metadata().getString("general.architecture"));
            assertEquals(2, f.tensors().size());
            assertEquals(-7f, f.requireTensor("b").data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 7));
        }
    }

    // ---- header ----

    @Test
    void emptyFile() {
        rejects(write("empty.gguf", new byte[0]), "empty file");
    }

    @Test
    void wrongMagic() {
        byte[] b = RawGguf.valid().bytes();
        b[0] = 'F';
        rejects(write("magic.gguf", b), "not a GGUF file", "magic");
    }

    @Test
    void versionOne() {
        rejects(new RawGguf().header(1, 0, 0).write(dir, "v1.gguf"), "unsupported GGUF version 1");
    }

    @Test
    void versionFour() {
        rejects(new RawGguf().header(4, 0, 0).write(dir, "v4.gguf"), "unsupported GGUF version 4");
    }

    @Test
    void bigEndian() {
        byte[] b = RawGguf.valid().bytes();
        b[4] = 0;
        b[7] = 3; // version 3 written big-endian
        rejects(write("be.gguf", b), "big-endian");
    }

    @Test
    void truncatedInsideMagic() {
        rejects(write("tiny.gguf", new byte[] {'G', 'G'}), "truncated");
    }

    @Test
    void truncatedInsideHeader() {
        rejects(write("header.gguf", RawGguf.valid().bytes(12)), "truncated", "tensor count");
        rejects(write("header2.gguf", RawGguf.valid().bytes(20)), "truncated", "metadata key/value count");
    }

    @Test
    void absurdTensorCount() {
        rejects(new RawGguf().header(3, 1L << 40, 0).zeros(64).write(dir, "nt.gguf"), "tensor count is 1099511627776", "absurd");
        rejects(new RawGguf().header(3, -1, 0).zeros(64).write(dir, "nt2.gguf"), "tensor count is 18446744073709551615", "absurd");
    }

    @Test
    void absurdKeyValueCount() {
        rejects(new RawGguf().header(3, 0, 1L << 40).zeros(64).write(dir, "nkv.gguf"), "metadata key/value count", "absurd");
    }

    @Test
    void countsLargerThanTheFileHoldsAreTruncation() {
        rejects(new RawGguf().header(3, 0, 100).kvString("general.architecture", "llama").write(dir, "kv100.gguf"),
                "metadata key/value count is 100", "truncated");
    }

    // ---- metadata ----

    @Test
    void truncatedInsideMetadataKey() {
        RawGguf r = RawGguf.valid();
        rejects(write("key.gguf", r.bytes(r.mark("kv", 8 + 5))), "truncated", "metadata key #0");
    }

    @Test
    void truncatedInsideMetadataString() {
        RawGguf r = RawGguf.valid();
        rejects(write("str.gguf", r.bytes(r.mark("kv.arch.value", 8 + 2))), "truncated", "value of 'general.architecture'");
        rejects(write("str2.gguf", r.bytes(r.mark("kv.arch.value", 3))), "truncated", "'general.architecture'");
    }

    @Test
    void truncatedInsideArray() {
        RawGguf r = RawGguf.valid();
        // the count (4) still fits the few bytes left in such a small file only as truncation, never as absurd
        rejects(write("arr.gguf", r.bytes(r.mark("kv.array.values", 6))), "truncated", "'test.array'");
        // an array of strings cut in its third element
        RawGguf s = new RawGguf().header(3, 0, 1).str("tokenizer.ggml.tokens").u32(RawGguf.T_ARRAY).u32(RawGguf.T_STRING).u64(3)
                .str("<unk>").str("<s>").str("</s>");
        rejects(write("arr2.gguf", s.bytes(s.size() - 2)), "truncated", "element 2 of array 'tokenizer.ggml.tokens'");
    }

    @Test
    void absurdStringLength() {
        RawGguf r = new RawGguf().header(3, 0, 1).str("general.name").u32(RawGguf.T_STRING).u64(1L << 40).zeros(32);
        rejects(r.write(dir, "strlen.gguf"), "value of 'general.name'", "1099511627776", "absurd");
        RawGguf k = new RawGguf().header(3, 0, 1).u64(-2).zeros(32);
        rejects(k.write(dir, "keylen.gguf"), "length of metadata key #0", "absurd");
    }

    @Test
    void arrayWithAbsurdCount() {
        RawGguf r = new RawGguf().header(3, 0, 1).str("tokenizer.ggml.scores").u32(RawGguf.T_ARRAY).u32(RawGguf.T_FLOAT32)
                .u64(1L << 60).zeros(64);
        rejects(r.write(dir, "arrcount.gguf"), "element count of array 'tokenizer.ggml.scores'", "absurd");
        RawGguf n = new RawGguf().header(3, 0, 1).str("nested").u32(RawGguf.T_ARRAY).u32(RawGguf.T_ARRAY).u64(-1).zeros(64);
        rejects(n.write(dir, "arrcount2.gguf"), "element count of array 'nested'", "absurd");
    }

    @Test
    void arraysNestedTooDeep() {
        RawGguf r = new RawGguf().header(3, 0, 1).str("deep").u32(RawGguf.T_ARRAY);
        for (int i = 0; i < 6; i++) r.u32(RawGguf.T_ARRAY).u64(1);
        r.zeros(64);
        rejects(r.write(dir, "deep.gguf"), "'deep", "nests arrays deeper than");
    }

    @Test
    void duplicateKeys() {
        RawGguf r = new RawGguf().header(3, 0, 3).kvString("general.architecture", "llama").kvU32("llama.block_count", 2)
                .kvString("general.architecture", "qwen2");
        rejects(r.write(dir, "dupkey.gguf"), "duplicate metadata key 'general.architecture'");
    }

    @Test
    void emptyKey() {
        rejects(new RawGguf().header(3, 0, 1).kvU32("", 1).write(dir, "emptykey.gguf"), "metadata key #0 is empty");
    }

    @Test
    void unknownValueType() {
        RawGguf r = new RawGguf().header(3, 0, 1).str("general.architecture").u32(13).str("llama");
        rejects(r.write(dir, "vtype.gguf"), "metadata key 'general.architecture' has unknown value type 13");
        RawGguf a = new RawGguf().header(3, 0, 1).str("test.array").u32(RawGguf.T_ARRAY).u32(0xFFFF_FFFFL).u64(1).zeros(16);
        rejects(a.write(dir, "etype.gguf"), "'test.array' is an array of unknown value type 4294967295");
    }

    @Test
    void boolNotZeroOrOne() {
        RawGguf r = new RawGguf().header(3, 0, 1).str("general.flag").u32(RawGguf.T_BOOL).u8(2);
        rejects(r.write(dir, "bool.gguf"), "'general.flag' has BOOL value 2, expected 0 or 1");
        RawGguf a = new RawGguf().header(3, 0, 1).str("flags").u32(RawGguf.T_ARRAY).u32(RawGguf.T_BOOL).u64(3).u8(1).u8(0).u8(0xFF);
        rejects(a.write(dir, "bools.gguf"), "'flags[2]' has BOOL value -1");
    }

    @Test
    void badAlignment() {
        for (long a : new long[] {0, 3, 48, 1L << 30}) {
            RawGguf r = new RawGguf().header(3, 0, 1).kvU32("general.alignment", a);
            rejects(r.write(dir, "align" + a + ".gguf"), "general.alignment = " + a, "power of two");
        }
        RawGguf s = new RawGguf().header(3, 0, 1).kvString("general.alignment", "32");
        rejects(s.write(dir, "alignstr.gguf"), "'general.alignment' has type STRING");
    }

    // ---- tensor infos ----

    @Test
    void truncatedInsideTensorInfos() {
        RawGguf r = RawGguf.valid();
        rejects(write("ti.gguf", r.bytes(r.mark("tensor.b.dims", 3))), "truncated", "dimension 0 of tensor 'b'");
        rejects(write("ti2.gguf", r.bytes(r.mark("tensor.b", 8))), "truncated", "name of tensor #1");
        rejects(write("ti3.gguf", r.bytes(r.mark("padding", -4))), "truncated", "data offset of tensor 'b'");
    }

    @Test
    void truncatedBeforeTheDataStarts() {
        RawGguf r = RawGguf.valid();
        rejects(write("pad.gguf", r.bytes(r.mark("padding", 2))), "truncated", "tensor data should start at byte " + r.mark("data", 0));
    }

    @Test
    void zeroDimension() {
        rejects(oneTensor("dim0.gguf", RawGguf.F32, 0, 64, 16, 0), "tensor 'blk.0.w' dimension 1 is 0");
    }

    @Test
    void negativeDimension() {
        rejects(oneTensor("dimneg.gguf", RawGguf.F32, 0, 64, -16), "tensor 'blk.0.w' dimension 0 is 18446744073709551600");
    }

    @Test
    void dimensionProductOverflows() {
        rejects(oneTensor("overflow.gguf", RawGguf.F32, 0, 64, 1L << 40, 1L << 40), "tensor 'blk.0.w'", "absurd element count");
        rejects(oneTensor("overflow2.gguf", RawGguf.F32, 0, 64, 1L << 20, 1L << 20, 1L << 20, 1L << 20), "'blk.0.w'", "absurd element count");
    }

    @Test
    void badDimensionCount() {
        rejects(oneTensor("dims0.gguf", RawGguf.F32, 0, 64), "tensor 'blk.0.w' has 0 dimensions, expected 1 to 4");
        rejects(oneTensor("dims5.gguf", RawGguf.F32, 0, 64, 1, 1, 1, 1, 1), "tensor 'blk.0.w' has 5 dimensions");
    }

    @Test
    void unknownTensorType() {
        rejects(oneTensor("type.gguf", 99, 0, 64, 16), "tensor 'blk.0.w' has unknown ggml type id 99");
        rejects(oneTensor("type4.gguf", 4, 0, 64, 32), "unknown ggml type id 4"); // Q4_2, removed from ggml
    }

    @Test
    void firstDimensionNotAMultipleOfTheBlockSize() {
        rejects(oneTensor("block.gguf", RawGguf.Q8_0, 0, 64, 48, 2), "tensor 'blk.0.w' of type Q8_0", "48", "block size 32");
    }

    @Test
    void absurdTensorName() {
        RawGguf r = new RawGguf().header(3, 1, 0).u64(1L << 20).zeros(64);
        rejects(r.write(dir, "tname.gguf"), "name of tensor #0", "absurd");
    }

    @Test
    void duplicateTensorNames() {
        RawGguf r = new RawGguf().header(3, 2, 0).tensorInfo("w", RawGguf.F32, 0, 8).tensorInfo("w", RawGguf.F32, 32, 8).pad(32).zeros(64);
        rejects(r.write(dir, "duptensor.gguf"), "duplicate tensor name 'w'");
    }

    // ---- tensor data ----

    @Test
    void truncatedInsideTensorData() {
        RawGguf r = RawGguf.valid();
        rejects(write("data.gguf", r.bytes(r.mark("data.b", 10))), "tensor 'b'", "truncated");
        rejects(write("data2.gguf", r.bytes(r.mark("data", 10))), "tensor 'a'", "truncated");
    }

    @Test
    void offsetPastEndOfFile() {
        rejects(oneTensor("past.gguf", RawGguf.F32, 4096, 64, 16), "tensor 'blk.0.w' data offset 4096 is past the end of the file");
        rejects(oneTensor("past2.gguf", RawGguf.F32, -32, 64, 16), "'blk.0.w' data offset 18446744073709551584 is past the end");
        rejects(oneTensor("past3.gguf", RawGguf.F32, 32, 64, 16), "tensor 'blk.0.w'", "ends at byte", "truncated");
    }

    @Test
    void misalignedOffset() {
        rejects(oneTensor("misaligned.gguf", RawGguf.F32, 4, 128, 16), "tensor 'blk.0.w' data offset 4 is not a multiple of the alignment 32");
    }

    @Test
    void overlappingTensors() {
        RawGguf r = new RawGguf().header(3, 3, 0).tensorInfo("x", RawGguf.F32, 0, 8).tensorInfo("big", RawGguf.F32, 32, 32)
                .tensorInfo("inside", RawGguf.F32, 96, 8).pad(32).zeros(256);
        rejects(r.write(dir, "overlap.gguf"), "tensors 'big'", "'inside'", "overlap");
    }

    // ---- sweeps: every truncation, random corruption ----

    /** Every prefix of a valid file shorter than its last tensor's end is refused as truncated. */
    @Test
    void everyTruncationIsReportedAsTruncated() {
        RawGguf r = RawGguf.valid();
        byte[] all = r.bytes();
        Path p = dir.resolve("cut.gguf");
        for (int len = 1; len < r.mark("end", 0); len++) {
            RawGguf.write(dir, "cut.gguf", Arrays.copyOf(all, len));
            ModelFormatException e = rejects(p);
            int n = len;
            assertTrue(e.getMessage().contains("truncated"), () -> "cut at " + n + ": " + e.getMessage());
        }
    }

    /** Random byte corruption of the header and infos: opens, or fails with a ModelFormatException, nothing else. */
    @Test
    void randomCorruptionOnlyEverRaisesModelFormatException() {
        byte[] valid = RawGguf.valid().bytes();
        int headerEnd = RawGguf.valid().mark("data", 0);
        SplittableRandom rnd = new SplittableRandom(20240611);
        Path p = dir.resolve("fuzz.gguf");
        int opened = 0;
        for (int iter = 0; iter < 3000; iter++) {
            byte[] b = valid.clone();
            int flips = 1 + rnd.nextInt(4);
            for (int k = 0; k < flips; k++) {
                int at = rnd.nextInt(headerEnd);
                b[at] = switch (rnd.nextInt(4)) {
                    case 0 -> (byte) rnd.nextInt(256);
                    case 1 -> (byte) 0xFF;
                    case 2 -> 0;
                    default -> (byte) (b[at] ^ (1 << rnd.nextInt(8)));
                };
            }
            RawGguf.write(dir, "fuzz.gguf", b);
            try (GgufFile f = GgufFile.open(p)) {
                opened++;
                for (GgufTensor t : f.tensors().values()) {
                    assertTrue(t.data().byteSize() == t.byteSize() && f.dataStart() + t.offset() + t.byteSize() <= f.fileSize());
                }
            } catch (ModelFormatException expected) {
                assertTrue(expected.getMessage().contains(p.toString()));
            } catch (Throwable other) {
                throw new AssertionError("iteration " + iter + ": " + other, other);
            }
        }
        assertTrue(opened < 3000);
    }
}
