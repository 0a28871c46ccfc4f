package io.moe4j.gguf;

import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real GGUF files (written by gguf-py and llama-quantize): rewriting them with GgufWriter gives the same bytes. */
class GgufRoundTripTest {

    @TempDir
    Path dir;

    static List<Path> sharedGgufFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        for (Path folder : List.of(SharedData.golden().resolve("models"), SharedData.models())) {
            try (Stream<Path> s = Files.list(folder)) {
                s.filter(p -> p.toString().endsWith(".gguf")).sorted().forEach(files::add);
            }
        }
        return files;
    }

    @Test
    void everySharedModelRewritesByteForByte() throws IOException {
        List<Path> files = sharedGgufFiles();
        assertTrue(files.size() >= 15, "golden models + stories260K + llama-2-tiny-random: " + files);
        for (Path src : files) {
            Path out = dir.resolve(src.getFileName());
            try (GgufFile f = GgufFile.open(src)) {
                GgufWriter.copy(f, out);
            }
            long mismatch = Files.mismatch(src, out);
            assertEquals(-1, mismatch, () -> src.getFileName() + " differs from its rewrite at byte " + mismatch
                    + " (sizes " + size(src) + " and " + size(out) + ")");
            Files.delete(out);
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(0, s.count(), "no temporary files are left");
        }
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }

    /** Opening the largest golden model maps it: every tensor's data is a read-only slice of the one mapping. */
    @Test
    void openingTheLargestGoldenModelCopiesNoTensorData() throws IOException {
        Path largest;
        try (Stream<Path> s = Files.list(SharedData.golden().resolve("models"))) {
            largest = s.filter(p -> p.toString().endsWith(".gguf")).max(Comparator.comparingLong(GgufRoundTripTest::size)).orElseThrow();
        }
        try (GgufFile f = GgufFile.open(largest)) {
            MemorySegment map = f.mapping();
            assertTrue(map.isMapped(), "the file is memory-mapped");
            assertTrue(map.isReadOnly());
            assertEquals(Files.size(largest), map.byteSize());
            long tensorBytes = 0;
            for (GgufTensor t : f.tensors().values()) {
                MemorySegment d = t.data();
                assertTrue(d.isMapped() && d.isNative() && d.isReadOnly(), t.name());
                assertEquals(map.address() + f.dataStart() + t.offset(), d.address(), t.name() + " is a slice at its file offset");
                assertEquals(t.byteSize(), d.byteSize());
                assertTrue(map.asSlice(f.dataStart() + t.offset(), t.byteSize()).equals(d) || d.address() + d.byteSize() <= map.address() + map.byteSize());
                assertFalse(d.heapBase().isPresent(), t.name() + " has no heap array behind it");
                tensorBytes += t.byteSize();
            }
            assertTrue(tensorBytes > Files.size(largest) / 2, "most of the file is tensor data");
            assertTrue(f.describe().contains(f.tensors().size() + " tensors"), f.describe());
        }
    }
}
