package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.SimdStatus;
import io.moe4j.kernels.cpu.MatMul;
import io.moe4j.kernels.cpu.Parallel;
import io.moe4j.kernels.cpu.CpuMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The matrix kernels (row path for up to 3 tokens, 7 where a 4-token row kernel exists, 11 for interleaved matrices
 * with a four-token kernel; panel path beyond; several
 * products in one dispatch; any thread count) against the plain scalar reference: rows decoded by the independent {@link ReferenceDecoder}, then
 * the lane-ordered reduction written out element by element. Bit for bit, on random data with odd sizes.
 */
class MatMulTest {

    /** The documented reduction (BlockFormat), written independently of the production helper. */
    static float reference(float[] w, int wOff, float[] x, int xOff, int n) {
        float[][] group = new float[4][8];
        int end = n / 32 * 32;
        for (int i = 0; i < end; i++) {
            float[] g = group[i % 32 / 8];
            g[i % 8] = Math.fma(w[wOff + i], x[xOff + i], g[i % 8]);
        }
        float[] c = new float[8];
        for (int l = 0; l < 8; l++) c[l] = (group[0][l] + group[2][l]) + (group[1][l] + group[3][l]);
        float s = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
        for (int i = end; i < n; i++) s = Math.fma(w[wOff + i], x[xOff + i], s);
        return s;
    }

    private static CpuMatrix matrix(GgmlType type, int rows, int cols, Random r, int pad) {
        int blocksPerRow = cols / type.blockSize;
        byte[] b = TestData.saneBlocks(type, rows * blocksPerRow, r);
        byte[] padded = new byte[pad + b.length];
        System.arraycopy(b, 0, padded, pad, b.length);
        return new CpuMatrix(MemorySegment.ofArray(padded).asSlice(pad), type, rows, cols);
    }

    private static float[] decoded(CpuMatrix w) {
        byte[] all = w.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        return ReferenceDecoder.decode(w.type(), all);
    }

    private static void assertBits(float want, float got, String what) {
        if (Float.floatToIntBits(want) != Float.floatToIntBits(got)) {
            assertEquals(want, got, 0f, what + " (bits " + Integer.toHexString(Float.floatToIntBits(want)) + " vs "
                    + Integer.toHexString(Float.floatToIntBits(got)) + ")");
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    void everyPathEqualsTheScalarReferenceBitForBit(GgmlType type) {
        Random r = new Random(11 + type.id);
        int[] colsChoices = type.isQuantized() ? new int[]{type.blockSize, 3 * type.blockSize, 8 * type.blockSize}
                : new int[]{1, 7, 8, 31, 32, 33, 100, 259};
        for (int cols : colsChoices) {
            for (int rows : new int[]{1, 3, 5, 13, 37}) {
                CpuMatrix w = matrix(type, rows, cols, r, r.nextInt(5));
                float[] wf = decoded(w);
                for (int n : new int[]{1, 2, 3, 4, 5, 7, 9}) {
                    float[] x = TestData.gaussian(r, n * cols + 6, 1.0);
                    float[] out = new float[n * rows + 4];
                    MatMul.mul(w, x, 2, n, out, 3);
                    for (int t = 0; t < n; t++) {
                        for (int row = 0; row < rows; row++) {
                            float want = reference(wf, row * cols, x, 2 + t * cols, cols);
                            assertBits(want, out[3 + t * rows + row], type + " " + rows + "x" + cols + " n=" + n + " token " + t + " row " + row);
                        }
                    }
                    assertEquals(0f, out[0]);
                    assertEquals(0f, out[out.length - 1]);
                }
            }
        }
    }

    @Test
    void resultsDoNotDependOnTheThreadCountOrOnSharingADispatch() {
        int saved = Parallel.threads();
        try {
            Random r = new Random(5);
            CpuMatrix a = matrix(GgmlType.Q4_K, 67, 512, r, 0), b = matrix(GgmlType.Q8_0, 130, 96, r, 1);
            float[] xa = TestData.gaussian(r, 9 * 512, 1), xb = TestData.gaussian(r, 9 * 96, 1);
            float[] ref = null;
            for (int threads : new int[]{1, 2, 3, 5}) {
                Parallel.setThreads(threads);
                for (int n : new int[]{1, 9}) {
                    float[] oa = new float[n * 67], ob = new float[n * 130];
                    MatMul.mulAll(new MatMul.Task(a, xa, 0, n, oa, 0), new MatMul.Task(b, xb, 0, n, ob, 0));
                    float[] sa = new float[n * 67], sb = new float[n * 130];
                    MatMul.mul(a, xa, 0, n, sa, 0);
                    MatMul.mul(b, xb, 0, n, sb, 0);
                    assertEquals(java.util.Arrays.toString(sa), java.util.Arrays.toString(oa));
                    assertEquals(java.util.Arrays.toString(sb), java.util.Arrays.toString(ob));
                    if (n == 9) {
                        // token 4 computed in a 4x4 tile equals token 4 alone (decode path)
                        float[] one = new float[67];
                        MatMul.mul(a, xa, 4 * 512, 1, one, 0);
                        for (int row = 0; row < 67; row++) assertBits(one[row], oa[4 * 67 + row], "token 4 row " + row);
                        if (ref == null) ref = oa;
                        else assertEquals(java.util.Arrays.toString(ref), java.util.Arrays.toString(oa), threads + " threads");
                    }
                }
            }
        } finally {
            Parallel.setThreads(saved);
        }
    }

    /**
     * The types with an interleaved layout on this CPU. There are none without 512-bit vectors: then one null case,
     * which each test skips, saying why (JUnit 5.11 rejects an empty source as a configuration error).
     */
    static java.util.stream.Stream<GgmlType> interleavedTypes() {
        java.util.List<GgmlType> types = java.util.stream.Stream.of(GgmlType.values())
                .filter(t -> t.supported && BlockFormats.interleaved(t) != null).toList();
        return types.isEmpty() ? java.util.stream.Stream.of((GgmlType) null) : types.stream();
    }

    private static void assumeInterleavedLayouts(GgmlType type) {
        org.junit.jupiter.api.Assumptions.assumeTrue(type != null,
                "no interleaved layouts on this CPU: they need 512-bit vectors (" + SimdStatus.describe() + ")");
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("interleavedTypes")
    void interleavedMatricesGiveTheReferenceBitForBit(GgmlType type) {
        assumeInterleavedLayouts(type);
        Random r = new Random(23 + type.id);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
            for (int cols : new int[]{type.blockSize, 3 * type.blockSize, 64 * type.blockSize}) {
                for (int rows : new int[]{1, 3, 4, 5, 13, 16, 37}) {
                    CpuMatrix plain = matrix(type, rows, cols, r, r.nextInt(5));
                    CpuMatrix w = plain.interleave(arena);
                    assertEquals(true, w.interleaved());
                    float[] wf = decoded(plain);
                    for (int n : new int[]{1, 2, 3, 4, 5, 7, 8, 9, 12, 13}) {
                        float[] x = TestData.gaussian(r, n * cols + 6, 1.0);
                        float[] out = new float[n * rows + 4];
                        MatMul.mul(w, x, 2, n, out, 3);
                        for (int t = 0; t < n; t++) {
                            for (int row = 0; row < rows; row++) {
                                float want = reference(wf, row * cols, x, 2 + t * cols, cols);
                                assertBits(want, out[3 + t * rows + row], type + " interleaved " + rows + "x" + cols + " n=" + n + " token " + t + " row " + row);
                            }
                        }
                        assertEquals(0f, out[0]);
                        assertEquals(0f, out[out.length - 1]);
                    }
                    float[] row = new float[cols];
                    for (int i = 0; i < rows; i++) {
                        MatMul.row(w, i, row, 0);
                        for (int c = 0; c < cols; c++) assertBits(wf[i * cols + c], row[c], "row " + i + " element " + c);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("interleavedTypes")
    void interleavedExpertSlicesAndMappedSources(GgmlType type) throws Exception {
        assumeInterleavedLayouts(type);
        Random r = new Random(31);
        int cols = 4 * type.blockSize, experts = 3, hidden = 8, rows = experts * hidden;
        byte[] bytes = TestData.saneBlocks(type, rows * cols / type.blockSize, r);
        java.nio.file.Path file = java.nio.file.Files.createTempFile("moe4j-interleave", ".bin");
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
             java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ,
                     java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(bytes));
            MemorySegment mapped = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, bytes.length, arena);
            CpuMatrix plain = new CpuMatrix(MemorySegment.ofArray(bytes), type, rows, cols);
            CpuMatrix w = new CpuMatrix(mapped, type, rows, cols).interleave(hidden, arena); // unloads the mapping
            float[] x = TestData.gaussian(r, cols, 1.0);
            for (int e = 0; e < experts; e++) {
                for (int count : new int[]{hidden, 6}) {
                    float[] want = new float[count], got = new float[count];
                    MatMul.mul(plain.rows(e * hidden, count), x, 0, 1, want, 0);
                    MatMul.mul(w.rows(e * hidden, count), x, 0, 1, got, 0);
                    assertEquals(java.util.Arrays.toString(want), java.util.Arrays.toString(got), "expert " + e + " rows " + count);
                }
            }
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> w.rows(2, 4));
            // A cut that is not a multiple of 4 keeps the file's layout.
            org.junit.jupiter.api.Assertions.assertFalse(plain.interleave(6, arena).interleaved());
            org.junit.jupiter.api.Assertions.assertSame(w, w.interleave(hidden, arena));
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    /** Interleaved copies go to uncleared memory (UnclearedMemory): packing must write every byte of a group. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("interleavedTypes")
    void packingWritesEveryByteOfAGroup(GgmlType type) {
        assumeInterleavedLayouts(type);
        Random r = new Random(41);
        int cols = 2 * type.blockSize;
        InterleavedFormat f = BlockFormats.interleaved(type);
        for (int rows = 1; rows <= InterleavedFormat.ROWS; rows++) {
            byte[] bytes = TestData.saneBlocks(type, rows * cols / type.blockSize, r);
            MemorySegment src = MemorySegment.ofArray(bytes);
            byte[] onZeros = new byte[(int) f.groupBytes(cols)], onOnes = new byte[onZeros.length];
            java.util.Arrays.fill(onOnes, (byte) -1);
            f.pack(src, 0, type.bytesFor(cols), rows, cols, MemorySegment.ofArray(onZeros), 0);
            f.pack(src, 0, type.bytesFor(cols), rows, cols, MemorySegment.ofArray(onOnes), 0);
            org.junit.jupiter.api.Assertions.assertArrayEquals(onZeros, onOnes, type + ", " + rows + " rows");
        }
    }
}
