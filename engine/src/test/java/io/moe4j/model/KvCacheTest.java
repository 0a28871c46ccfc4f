package io.moe4j.model;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.Rope;
import io.moe4j.model.arch.Architectures;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Memory accounting of the paged KV cache, on configurations shaped like real models (no weights needed). */
class KvCacheTest {
    /** A configuration of {@code arch} with the attention shape given (the rest does not touch the cache). */
    static ModelConfig shape(String arch, int layers, int heads, int kvHeads, int headDim, int window) {
        return new ModelConfig(Architectures.byName(arch, "test"), heads * headDim, layers, heads, kvHeads, headDim, headDim,
                headDim, 10000, Rope.Scaling.NONE, 1, 0, 1, 1e-5f, 8, 2, false, 1, 131072, window);
    }

    @Test
    void bytesPerTokenAreLayersTimesKvHeadsTimesHeadSizeTimesTwoTimesTheElementSize() {
        ModelConfig olmoe = shape("olmoe", 16, 16, 16, 128, 0); // OLMoE-1B-7B's attention
        double[] elementBytes = {4, 2, 34 / 32.0};
        KvType[] types = KvType.values();
        for (int i = 0; i < types.length; i++) {
            KvPool pool = Backend.cpu().kvPool(8L << 30);
            try (KvCache cache = new KvCache(olmoe, 8192, types[i], pool)) {
                int tokens = 1300;
                cache.appendRandom(io.moe4j.kernels.Backend.cpu(), tokens, 7);
                double perToken = olmoe.blockCount() * olmoe.kvHeadCount() * olmoe.headDim() * 2 * elementBytes[i];
                long ideal = (long) (perToken * tokens);
                long pageSlack = olmoe.blockCount() * 2 * KvPool.pageBytes(types[i], olmoe.kvHeadCount(), olmoe.headDim());
                assertTrue(cache.bytes() >= ideal && cache.bytes() <= ideal + pageSlack,
                        types[i] + ": " + cache.bytes() + " bytes for " + tokens + " tokens; " + ideal + " + at most " + pageSlack);
                // per token of the pages held: the formula within 5%
                long pages = (tokens + KvStore.PAGE - 1) / KvStore.PAGE;
                double heldPerToken = cache.bytes() / (double) (pages * KvStore.PAGE);
                assertTrue(Math.abs(heldPerToken - perToken) <= 0.05 * perToken, types[i] + ": " + heldPerToken + " vs " + perToken);
                assertEquals(cache.bytes(), pool.stats().bytesInUse());
            }
            assertEquals(0, pool.stats().bytesInUse(), "closing the cache gives its pages back");
        }
    }

    @Test
    void slidingWindowLayersKeepOnlyTheirWindow() {
        ModelConfig gptOss = shape("gpt-oss", 24, 64, 8, 64, 128); // gpt-oss-20b: every other layer a window of 128
        KvPool pool = Backend.cpu().kvPool(8L << 30);
        try (KvCache cache = new KvCache(gptOss, 16384, KvType.F16, pool)) {
            long page = KvPool.pageBytes(KvType.F16, 8, 64);
            for (int step = 0; step < 40; step++) {
                cache.appendRandom(io.moe4j.kernels.Backend.cpu(), 100, step);
                for (int l = 0; l < gptOss.blockCount(); l++) {
                    int held = cache.keys[l].pagesHeld() + cache.values[l].pagesHeld();
                    if (gptOss.arch().usesSlidingWindow(l)) {
                        // the window of 128 plus what was just added spans at most 2 pages of keys and 2 of values
                        assertTrue(held <= 4, "layer " + l + " holds " + held + " pages at " + cache.length() + " positions");
                    } else {
                        assertEquals(2 * ((cache.length() + 255) / 256), held);
                    }
                }
            }
            long full = 12L * 2 * ((4000 + 255) / 256) * page, windowed = 12L * 4 * page;
            assertTrue(cache.bytes() <= full + windowed, cache.bytes() + " bytes");
            // a shorter prefix the window layers no longer hold cannot be kept; 0 always can
            assertEquals(0, cache.keepable(1000));
            assertEquals(4000, cache.keepable(4000));
            assertThrows(IllegalArgumentException.class, () -> cache.truncate(1000));
            cache.truncate(0);
            assertEquals(0, cache.bytes());
        }
        assertEquals(0, pool.stats().bytesInUse());
    }

    @Test
    void anExhaustedBudgetIsAClearErrorNamingTheBudget() {
        ModelConfig olmoe = shape("olmoe", 16, 16, 16, 128, 0);
        long page = KvPool.pageBytes(KvType.F16, 16, 128);
        KvPool pool = Backend.cpu().kvPool(40 * page); // room for 256 positions of 16 layers' keys and values, and a bit
        try (KvCache a = new KvCache(olmoe, 4096, KvType.F16, pool); KvCache b = new KvCache(olmoe, 4096, KvType.F16, pool)) {
            a.reserve(256);
            var e = assertThrows(KvBudgetExceededException.class, () -> b.reserve(256));
            assertEquals(40 * page, e.budget());
            assertTrue(e.getMessage().contains("KV cache budget of 40.0 MiB") && e.getMessage().contains("--kv-budget"), e.getMessage());
            assertTrue(e.requested() > 0 && e.requested() <= 32 * page, e.getMessage());
            a.close();
            b.reserve(256);
            assertEquals(32 * page, b.bytes());
        }
    }

    /**
     * A context shift on gpt-oss's shape: the full layers give back the pages past the new length, the window layers
     * move their window (into pages they take again) and still hold only about it; a kept prefix that the window
     * would need again after the shift, but gave back, makes the shift refuse and leave the cache as it was.
     */
    @Test
    void aShiftMovesTheWindowsAndGivesBackThePagesPastTheEnd() {
        ModelConfig gptOss = shape("gpt-oss", 24, 64, 8, 64, 128);
        Rope rope = new Rope(Rope.Style.NEOX, 64, 150000, Rope.Scaling.YARN, 32, 4096);
        KvPool pool = Backend.cpu().kvPool(8L << 30);
        try (KvCache cache = new KvCache(gptOss, 16384, KvType.F16, pool)) {
            cache.appendRandom(Backend.cpu(), 4000, 1);
            long before = cache.bytes();
            assertTrue(cache.shift(Backend.cpu(), rope, 4, 1998));
            assertEquals(2002, cache.length());
            for (int l = 0; l < gptOss.blockCount(); l++) {
                int held = cache.keys[l].pagesHeld() + cache.values[l].pagesHeld();
                if (gptOss.arch().usesSlidingWindow(l)) {
                    assertTrue(held <= 4, "layer " + l + " holds " + held + " pages");
                    assertTrue(cache.keys[l].firstStored() <= gptOss.attentionStart(l, 2002), "layer " + l + " holds its window");
                } else {
                    assertEquals(2 * ((2002 + 255) / 256), held, "layer " + l);
                }
            }
            assertTrue(cache.bytes() < before);
            assertEquals(cache.bytes(), pool.stats().bytesInUse());
            assertEquals(2002, cache.keepable(2002));
            cache.appendRandom(Backend.cpu(), 100, 2);
            assertEquals(2102, cache.length());

            // the window layers hold from 1842 on (3840, their first position at 4000, less 1998); with 1800 kept
            // and 200 dropped the next token's window would reach back to kept position 1775
            assertEquals(1842, cache.keys[0].firstStored());
            long bytes = cache.bytes();
            assertFalse(cache.shift(Backend.cpu(), rope, 1800, 200));
            assertEquals(2102, cache.length());
            assertEquals(bytes, cache.bytes());
            assertTrue(cache.shift(Backend.cpu(), rope, 1800, 100), "100 dropped: the next window, from 1875 on, holds surviving positions only");
            assertThrows(IllegalArgumentException.class, () -> cache.shift(Backend.cpu(), rope, 2000, 103));
        }
        assertEquals(0, pool.stats().bytesInUse());
    }
}
