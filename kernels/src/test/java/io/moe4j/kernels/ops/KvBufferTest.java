package io.moe4j.kernels.ops;

import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.quant.BlockFormats;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvBufferTest {
    private static final int HEADS = 2, HD = 64, WIDTH = HEADS * HD;

    private static float[] row(Random r) {
        float[] x = new float[WIDTH];
        for (int i = 0; i < WIDTH; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @Test
    void pagesAreTakenAsPositionsAreWrittenAndGivenBackOnTruncateAndClose() {
        CpuKvPool pool = CpuKvPool.of(64L << 20);
        long page = KvPool.pageBytes(KvType.F16, HEADS, HD);
        assertEquals(2L * HD * HEADS * KvStore.PAGE, page);
        KvBuffer b = KvBuffer.create(KvType.F16, HEADS, HD, pool);
        Random r = new Random(1);
        for (int p = 0; p < 600; p++) b.write(p, row(r), 0);
        assertEquals(3, b.pagesHeld()); // 600 positions: 256 + 256 + 88
        assertEquals(3 * page, b.bytes());
        assertEquals(3, pool.stats().pagesInUse());
        b.truncate(300);
        assertEquals(2, b.pagesHeld());
        assertEquals(1, pool.stats().pagesFree());
        for (int p = 300; p < 520; p++) b.write(p, row(r), 0); // the third page again comes from the free list
        assertEquals(0, pool.stats().pagesFree());
        assertEquals(3 * page, pool.stats().bytesInUse());
        b.close();
        assertEquals(0, pool.stats().pagesInUse());
        assertEquals(0, pool.stats().bytesInUse());
        assertEquals(3, pool.stats().pagesFree());
    }

    @Test
    void valuesReadBackExactlyAcrossPages() {
        for (KvType type : new KvType[] {KvType.F32, KvType.F16}) {
            KvBuffer b = KvBuffer.create(type, HEADS, HD, CpuKvPool.of(16L << 20));
            Random r = new Random(2);
            float[][] rows = new float[520][];
            for (int p = 0; p < rows.length; p++) b.write(p, rows[p] = row(r), 0);
            for (int p = 0; p < rows.length; p++) {
                for (int i = 0; i < WIDTH; i++) {
                    float want = type == KvType.F32 ? rows[p][i] : Float.float16ToFloat(Float.floatToFloat16(rows[p][i]));
                    assertEquals(want, b.get(p, i), type + " position " + p + " column " + i);
                }
            }
            // a block of positions that spans two pages is copied whole, in order
            float[] block = new float[40 * HD];
            b.toFloats(1, 240, 40, block, 0);
            for (int j = 0; j < 40; j++) for (int i = 0; i < HD; i++) assertEquals(b.get(240 + j, HD + i), block[j * HD + i]);
            b.close();
        }
    }

    @Test
    void q8_0StoresGgmlBlocksAsQuantizeRowQ8_0Writes() {
        KvBuffer b = KvBuffer.create(KvType.Q8_0, HEADS, HD, CpuKvPool.of(16L << 20));
        assertEquals(34L * HD / 32 * HEADS * KvStore.PAGE, KvPool.pageBytes(KvType.Q8_0, HEADS, HD));
        Random r = new Random(3);
        for (int p = 0; p < 300; p++) {
            float[] x = row(r);
            b.write(p, x, 0);
            for (int h = 0; h < HEADS; h++) {
                byte[] want = BlockFormats.quantize(GgmlType.Q8_0, x, h * HD, HD);
                MemorySegment page = b.page(p);
                byte[] got = new byte[want.length];
                MemorySegment.copy(page, ValueLayout.JAVA_BYTE, b.offset(h, p), got, 0, got.length);
                assertArrayEquals(want, got, "position " + p + " head " + h);
                for (int i = 0; i < HD; i++) {
                    int blk = i / 32;
                    float d = Float.float16ToFloat((short) ((want[blk * 34] & 0xff) | want[blk * 34 + 1] << 8));
                    assertEquals(d * want[blk * 34 + 2 + i % 32], b.get(p, h * HD + i));
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> KvBuffer.create(KvType.Q8_0, 4, 8, CpuKvPool.shared()));
        b.close();
    }

    @Test
    void anExhaustedBudgetRefusesPagesWithoutThrowingOutOfMemory() {
        long page = KvPool.pageBytes(KvType.F32, HEADS, HD);
        CpuKvPool pool = CpuKvPool.of(3 * page);
        KvBuffer a = KvBuffer.create(KvType.F32, HEADS, HD, pool), b = KvBuffer.create(KvType.F32, HEADS, HD, pool);
        assertTrue(a.reserve(0, 2 * KvStore.PAGE));
        assertFalse(b.reserve(0, 2 * KvStore.PAGE)); // the second page does not fit
        assertEquals(1, b.pagesHeld());
        var e = assertThrows(IllegalStateException.class, () -> b.write(KvStore.PAGE, new float[WIDTH], 0));
        assertTrue(e.getMessage().contains("budget of " + 3 * page), e.getMessage());
        a.close();
        assertTrue(b.reserve(0, 3 * KvStore.PAGE)); // a's pages went back
        // free pages of another size are dropped to make room
        b.close();
        KvBuffer c = KvBuffer.create(KvType.F16, HEADS, HD, pool);
        assertTrue(c.reserve(0, 6 * KvStore.PAGE));
        assertEquals(6 * page / 2, pool.stats().bytesInUse());
        assertEquals(0, pool.stats().bytesFree());
        c.close();
    }

    @Test
    void slidingWindowPagesGoBackAndSharedPagesAreCounted() {
        CpuKvPool pool = CpuKvPool.of(64L << 20);
        KvBuffer b = KvBuffer.create(KvType.F16, HEADS, HD, pool);
        assertTrue(b.reserve(0, 1000));
        b.releaseBefore(600); // pages 0 and 1 hold only positions before 600
        assertEquals(2, b.pagesHeld());
        assertEquals(512, b.firstStored());
        assertThrows(IllegalArgumentException.class, () -> b.truncate(300));
        assertThrows(IllegalStateException.class, () -> b.get(100, 0));
        b.truncate(0);
        assertEquals(0, b.firstStored());
        assertEquals(0, pool.stats().pagesInUse());

        KvPage p = pool.tryAcquire(4096);
        pool.retain(p);
        assertEquals(1, pool.stats().pagesShared());
        pool.release(p);
        assertEquals(0, pool.stats().pagesShared());
        assertEquals(1, pool.stats().pagesInUse());
        pool.release(p);
        assertEquals(0, pool.stats().pagesInUse());
        assertThrows(IllegalStateException.class, () -> pool.release(p));
    }

    @Test
    void sharedPagesAreCopiedWhenEitherBufferWrites() {
        CpuKvPool pool = CpuKvPool.of(64L << 20);
        Random r = new Random(4);
        KvBuffer a = KvBuffer.create(KvType.F32, HEADS, HD, pool), b = KvBuffer.create(KvType.F32, HEADS, HD, pool);
        for (int p = 0; p < 300; p++) a.write(p, row(r), 0);
        b.shareFrom(a, 300);
        assertEquals(2, pool.stats().pagesInUse());
        assertEquals(2, pool.stats().pagesShared());
        for (int p = 0; p < 300; p++) assertEquals(a.get(p, 5), b.get(p, 5));
        float[] x = row(r), y = row(r);
        b.write(300, x, 0); // the partly filled page becomes b's own copy
        assertEquals(3, pool.stats().pagesInUse());
        assertEquals(1, pool.stats().pagesShared());
        a.write(300, y, 0); // a holds its page alone now: no copy
        assertEquals(3, pool.stats().pagesInUse());
        assertEquals(x[7], b.get(300, 7));
        assertEquals(y[7], a.get(300, 7));
        for (int p = 0; p < 300; p++) assertEquals(a.get(p, 9), b.get(p, 9));
        a.close();
        assertEquals(2, pool.stats().pagesInUse()); // b's pages stay
        assertEquals(0, pool.stats().pagesShared());
        b.close();
        assertEquals(0, pool.stats().pagesInUse());
        assertThrows(IllegalArgumentException.class, () -> KvBuffer.create(KvType.F16, HEADS, HD, pool).shareFrom(a, 10));
    }
}
