package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.LoadReport;
import io.moe4j.model.arch.Architectures;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The layout cache: a later load maps the interleaved matrices the first one wrote, with the same results. */
class LayoutCacheTest {
    private static final int[] PROMPT = {1, 300, 301, 302, 7, 9};

    /** Logits of every prompt token, and what the load took. */
    private record Run(float[] logits, LoadReport cache) {
        Path file() {
            return cache.cacheFile();
        }
    }

    private static Run run(Path model, Path cacheDir) {
        try (GgufFile f = GgufFile.open(model)) {
            var md = f.metadata();
            ModelConfig cfg = ModelConfig.from(md, Architectures.byName(md.getString("general.architecture"), md.source()));
            Backend backend = Backend.cpu(cacheDir);
            ModelWeights w = new ModelWeights(f, cfg, backend, LoadProgress.NONE);
            Transformer tf = new Transformer(cfg, w, backend);
            float[] logits = tf.forward(PROMPT, PROMPT.length, new KvCache(cfg, 16, KvType.F32), true, null);
            // one decode step more: the single-token kernels
            float[] step = tf.forward(new int[]{5}, 1, new KvCache(cfg, 16, KvType.F32), false, null);
            float[] all = java.util.Arrays.copyOf(logits, logits.length + step.length);
            System.arraycopy(step, 0, all, logits.length, step.length);
            return new Run(all, w.loadReport);
        }
    }

    /** Skips where the load without a cache prepared nothing: the CPU has no interleaved layouts to cache. */
    private static void assumeInterleavedLayouts(Run plain) {
        Assumptions.assumeTrue(plain.cache().prepared() > 0,
                "SKIPPED: this CPU has no 512-bit vectors, so no interleaved layouts to cache");
    }

    /** A Q8_0 MoE of the golden data, copied so that its file can be touched. */
    private static Path q8Model(Path tmp) throws IOException {
        return Files.copy(GoldenCase.byId("qwen2moe-q8_0").modelPath(), tmp.resolve("model.gguf"));
    }

    @Test
    void aSecondLoadMapsWhatTheFirstWroteWithTheSameLogits(@TempDir Path tmp) throws IOException {
        Path model = q8Model(tmp);
        Path dir = tmp.resolve("cache");
        Run plainRun = run(model, null);
        assumeInterleavedLayouts(plainRun);
        float[] plain = plainRun.logits();

        Run first = run(model, dir);
        assertTrue(first.cache().prepared() > 0, "the first load copies the matrices");
        assertEquals(0, first.cache().fromCache());
        assertTrue(Files.isRegularFile(first.file()), "and writes the cache file");
        assertArrayEquals(plain, first.logits());

        Run second = run(model, dir);
        assertEquals(first.file(), second.file());
        assertEquals(first.cache().prepared(), second.cache().fromCache(), "every matrix comes from the file");
        assertEquals(0, second.cache().prepared());
        assertArrayEquals(plain, second.logits());
    }

    /** A copy of the Q8_0 model, its cache folder, and the first load with that folder (which writes the file). */
    private record FirstLoad(Path model, Path dir, Run run) {
    }

    private static FirstLoad firstLoad(Path tmp) throws IOException {
        Path model = q8Model(tmp), dir = tmp.resolve("cache");
        assumeInterleavedLayouts(run(model, null));
        return new FirstLoad(model, dir, run(model, dir));
    }

    private interface Damage {
        void apply(Path file) throws IOException;
    }

    @Test
    void aDamagedFileIsIgnoredAndWrittenAgain(@TempDir Path tmp) throws IOException {
        FirstLoad first = firstLoad(tmp);
        Damage wrongMagic = f -> {
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap("NOTMOE4J".getBytes(StandardCharsets.US_ASCII)), 0);
            }
        };
        Damage cutShort = f -> {
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                ch.truncate(40); // inside the header
            }
        };
        for (Damage damage : List.of(wrongMagic, cutShort)) {
            damage.apply(first.run().file());
            Run damaged = run(first.model(), first.dir());
            assertEquals(0, damaged.cache().fromCache(), "nothing is read from a damaged file");
            assertArrayEquals(first.run().logits(), damaged.logits());
            Run again = run(first.model(), first.dir());
            assertEquals(first.run().cache().prepared(), again.cache().fromCache(), "the file was written again");
            assertArrayEquals(first.run().logits(), again.logits());
        }
    }

    @Test
    void aChangedModelFileGetsItsOwnCache(@TempDir Path tmp) throws IOException {
        FirstLoad first = firstLoad(tmp);
        Path model = first.model();
        Files.setLastModifiedTime(model, FileTime.fromMillis(Files.getLastModifiedTime(model).toMillis() - 60_000));
        Run touched = run(model, first.dir());
        assertNotEquals(first.run().file(), touched.file());
        assertEquals(0, touched.cache().fromCache());
        assertArrayEquals(first.run().logits(), touched.logits());
    }

    @Test
    void anotherModelWithTheSameSizeAndTimeGetsItsOwnCache(@TempDir Path tmp) throws IOException {
        FirstLoad first = firstLoad(tmp);
        Path model = first.model();
        FileTime time = Files.getLastModifiedTime(model);
        long dataStart;
        try (GgufFile f = GgufFile.open(model)) {
            dataStart = f.dataStart();
        }
        try (FileChannel ch = FileChannel.open(model, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, dataStart + 10);
            ch.write(ByteBuffer.wrap(new byte[]{(byte) (b.get(0) ^ 0x40)}), dataStart + 10); // another weight, same size
        }
        Files.setLastModifiedTime(model, time);
        Run other = run(model, first.dir());
        assertNotEquals(first.run().file(), other.file());
        assertEquals(0, other.cache().fromCache());
    }

    @Test
    void everyInterleavedTypeRoundTripsThroughTheFile(@TempDir Path tmp) {
        // Q4_K and Q6_K; Q4_0; MXFP4 with other types beside it; read in place, the cache in the temporary folder
        for (String id : new String[]{"llama_moe-q4_k_m", "llama_moe-q4_0", "gpt_oss-mxfp4_moe"}) {
            Path model = GoldenCase.byId(id).modelPath();
            Run plainRun = run(model, null);
            assumeInterleavedLayouts(plainRun);
            float[] plain = plainRun.logits();
            Run written = run(model, tmp);
            Run mapped = run(model, tmp);
            assertTrue(written.cache().prepared() > 0, id);
            assertEquals(written.cache().prepared(), mapped.cache().fromCache(), id);
            assertEquals(0, mapped.cache().prepared(), id);
            assertArrayEquals(plain, mapped.logits(), id);
        }
    }

    @Test
    void noFolderMeansNoCache(@TempDir Path tmp) { // the embedded default model: no golden data needed
        Path model = DefaultModel.write(tmp.resolve("model.gguf"));
        assertNull(run(model, null).file());
    }
}
