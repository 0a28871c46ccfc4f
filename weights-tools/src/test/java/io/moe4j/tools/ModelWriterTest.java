package io.moe4j.tools;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelWriterTest {
    @TempDir
    Path tmp;

    private static final Map<String, GgufValue> MD = Map.of("general.architecture", GgufValue.of("test"));

    @Test
    void chunkedRowsAreWrittenInOrderWhateverTheThreadCount() {
        long rows = 3 * ModelWriter.rowsPerChunk(64) + 5;
        TensorPlan.Rows ramp = (first, n, dst) -> {
            for (int i = 0; i < n * 64; i++) dst[i] = (first * 64 + i) % 1000;
        };
        TensorPlan.RawRows raw = (first, n, dst) -> {
            for (int i = 0; i < n * 8; i++) dst.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (first * 8 + i));
        };
        List<TensorPlan> plans = List.of(
                new TensorPlan("a", GgmlType.F32, new long[]{64, rows}, ramp),
                new TensorPlan("b", GgmlType.F32, new long[]{2, 3}, new TensorPlan.Bytes(MemorySegment.ofArray(new float[]{1, 2, 3, 4, 5, 6}))),
                new TensorPlan("c", GgmlType.F16, new long[]{4, 7}, raw),
                new TensorPlan("d", GgmlType.F32, new long[]{64, rows}, ramp));
        Path one = tmp.resolve("1.gguf"), four = tmp.resolve("4.gguf");
        ModelWriter.write(one, MD, plans, Progress.silent(), 1, "t");
        ModelWriter.Result r = ModelWriter.write(four, MD, plans, Progress.silent(), 4, "t");
        assertEquals(4, r.tensors());
        try (GgufFile f = GgufFile.open(four)) {
            float[] a = f.tensor("d").data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < a.length; i++) assertEquals(i % 1000, a[i], "element " + i);
            byte[] c = f.tensor("c").data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            for (int i = 0; i < c.length; i++) assertEquals((byte) i, c[i]);
        }
        try {
            assertArrayEquals(Files.readAllBytes(one), Files.readAllBytes(four));
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aFailingProducerLeavesNoFile() throws Exception {
        long rows = 10L * ModelWriter.rowsPerChunk(32);
        TensorPlan.Rows failing = (first, n, dst) -> {
            if (first > rows / 2) throw new io.moe4j.Moe4jException("source went away at row " + first);
        };
        Path out = tmp.resolve("x.gguf");
        var e = assertThrows(io.moe4j.Moe4jException.class, () -> ModelWriter.write(out, MD,
                List.of(new TensorPlan("a", GgmlType.F32, new long[]{32, rows}, failing)), Progress.silent(), 2, "t"));
        assertTrue(e.getMessage().contains("source went away"), e.getMessage());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(), s.toList());
        }
    }
}
