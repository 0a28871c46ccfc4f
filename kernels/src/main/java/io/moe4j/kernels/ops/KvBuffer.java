package io.moe4j.kernels.ops;

import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.quant.BlockFormats;
import io.moe4j.kernels.quant.BlockQuantizer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.Arrays;

/**
 * Keys or values of one layer for consecutive positions, each position a row of {@code width} values (kv heads ×
 * head size), stored in pages of {@link #PAGE} positions taken from a {@link KvPool} as positions are written and
 * given back when they are dropped ({@link #truncate}, {@link #releaseBefore}, {@link #close}). Pages are off the
 * Java heap. Within a page storage is <i>head-major</i>: each head's positions are contiguous, so attention streams
 * one head's keys and values sequentially (rows of all heads interleaved put a head's 256-512 bytes per position
 * 4-8 KB apart, which the prefetchers follow badly).
 *
 * <p>A buffer that is never closed gives its pages back when it becomes unreachable.
 */
public abstract sealed class KvBuffer implements KvStore permits KvBuffer.F32, KvBuffer.F16, KvBuffer.Q8_0 {
    private static final int PAGE_SHIFT = 8; // log2 of PAGE
    private static final Cleaner CLEANER = Cleaner.create();

    protected final int width, heads, headDim;
    /** Bytes of one head's row (one position); a page holds {@code heads × PAGE} of them, head-major. */
    protected final int rowBytes;
    private final long pageBytes;
    private final Pages pages;

    /** The page table, apart from the buffer so that the cleaner can give the pages back without the buffer. */
    private static final class Pages implements Runnable {
        final PagePool pool;
        KvPage[] table = new KvPage[0];
        /** Pages in the table (released ones are null). */
        int held;

        Pages(PagePool pool) {
            this.pool = pool;
        }

        void release(int i) {
            if (table[i] != null) {
                pool.release(table[i]);
                table[i] = null;
                held--;
            }
        }

        @Override
        public void run() {
            for (int i = 0; i < table.length; i++) release(i);
        }
    }

    protected KvBuffer(int heads, int headDim, KvType type, PagePool pool) {
        if (heads <= 0 || headDim <= 0) throw new IllegalArgumentException(heads + " heads of " + headDim);
        this.heads = heads;
        this.headDim = headDim;
        this.width = heads * headDim;
        this.rowBytes = Math.toIntExact(type.bytesFor(headDim));
        this.pageBytes = (long) rowBytes * heads * PAGE;
        this.pages = new Pages(pool);
        CLEANER.register(this, pages);
    }

    /** A buffer of rows of {@code heads} heads of {@code headDim} values of {@code type}, with pages from {@code pool}. */
    static KvBuffer create(KvType type, int heads, int headDim, PagePool pool) {
        return switch (type) {
            case F32 -> new F32(heads, headDim, pool);
            case F16 -> new F16(heads, headDim, pool);
            case Q8_0 -> new Q8_0(heads, headDim, pool);
        };
    }

    /** A buffer of rows of {@code width} values, as one head, with pages from the CPU backend's default pool. */
    public static KvBuffer create(KvType type, int width) {
        return create(type, 1, width);
    }

    /** A buffer of rows of {@code heads} heads of {@code headDim} values, with pages from the CPU backend's default pool. */
    public static KvBuffer create(KvType type, int heads, int headDim) {
        return create(type, heads, headDim, CpuKvPool.SHARED);
    }

    @Override
    public int width() {
        return width;
    }

    @Override
    public int headDim() {
        return headDim;
    }

    @Override
    public KvPool pool() {
        return pages.pool;
    }

    /** Bytes of the pages held, for memory accounting. */
    @Override
    public long bytes() {
        return pages.held * pageBytes;
    }

    /** Pages held. */
    @Override
    public int pagesHeld() {
        return pages.held;
    }

    /**
     * Makes sure positions {@code [0, to)} have pages, except those given back by {@link #releaseBefore}, and that
     * the pages of positions {@code [from, to)}, which are about to be written, are this buffer's own: a page shared
     * with another buffer ({@link #shareFrom}) is copied first. False when the pool's budget is exhausted (pages
     * taken so far are kept, and given back as usual).
     */
    @Override
    public boolean reserve(int from, int to) {
        int need = (to + PAGE - 1) >> PAGE_SHIFT;
        if (need > pages.table.length) pages.table = Arrays.copyOf(pages.table, Math.max(need, pages.table.length * 2));
        for (int i = released; i < need; i++) {
            KvPage p = pages.table[i];
            if (p == null) {
                p = pages.pool.tryAcquire(pageBytes);
                if (p == null) return false;
                pages.table[i] = p;
                pages.held++;
            } else if (i >= from >> PAGE_SHIFT && pages.pool.holders(p) > 1) {
                KvPage own = pages.pool.tryCopy(p);
                if (own == null) return false;
                pages.pool.release(p);
                pages.table[i] = own;
            }
        }
        return true;
    }

    /**
     * Makes this empty buffer hold positions {@code [0, length)} of {@code src} by sharing its pages (no copy; a
     * shared page is copied when either buffer writes into it). Both must have the same type, shape and pool.
     */
    @Override
    public void shareFrom(KvStore store, int length) {
        if (!(store instanceof KvBuffer src)) throw new IllegalArgumentException("pages can only be shared between stores of one backend");
        if (src.getClass() != getClass() || src.heads != heads || src.headDim != headDim || src.pages.pool != pages.pool) {
            throw new IllegalArgumentException("pages can only be shared between buffers of one type, shape and pool");
        }
        if (pages.held != 0) throw new IllegalStateException("the buffer must be empty to share another's pages");
        int n = (length + PAGE - 1) >> PAGE_SHIFT;
        if (n > src.pages.table.length || length > 0 && src.pages.table[n - 1] == null) {
            throw new IllegalArgumentException("the source does not hold " + length + " positions");
        }
        if (n > pages.table.length) pages.table = Arrays.copyOf(pages.table, n);
        released = Math.min(src.released, n);
        for (int i = released; i < n; i++) {
            pages.pool.retain(src.pages.table[i]);
            pages.table[i] = src.pages.table[i];
            pages.held++;
        }
    }

    /** Pages before this index were given back by {@link #releaseBefore} (their positions are gone). */
    private int released;

    /** The first position still stored (0 unless {@link #releaseBefore} dropped a leading part). */
    @Override
    public int firstStored() {
        return released << PAGE_SHIFT;
    }

    /** Gives back the pages all of whose positions are before {@code pos} (out of a sliding window). */
    @Override
    public void releaseBefore(int pos) {
        int upTo = Math.min(pos >> PAGE_SHIFT, pages.table.length);
        for (int i = released; i < upTo; i++) pages.release(i);
        released = Math.max(released, upTo);
    }

    /** Drops all positions at or after {@code length}: the pages past it go back to the pool. */
    @Override
    public void truncate(int length) {
        if (length < 0) throw new IllegalArgumentException("negative length " + length);
        if (length == 0) released = 0;
        if (length > 0 && length < firstStored()) {
            throw new IllegalArgumentException("positions before " + firstStored() + " were dropped; cannot keep " + length);
        }
        for (int i = (length + PAGE - 1) >> PAGE_SHIFT; i < pages.table.length; i++) pages.release(i);
    }

    /** Gives every page back; the buffer may be written again from position 0. */
    @Override
    public void close() {
        truncate(0);
    }

    /** The memory of position {@code pos}'s page; the position's row of head h is at {@link #offset}. */
    protected final MemorySegment page(int pos) {
        int i = pos >> PAGE_SHIFT;
        KvPage p = i < pages.table.length ? pages.table[i] : null;
        if (p == null) throw new IllegalStateException("position " + pos + " is not stored (no page)");
        return p.memory;
    }

    /** Byte offset of head {@code h} of position {@code pos} within its page. */
    protected final long offset(int h, int pos) {
        return ((long) h * PAGE + (pos & (PAGE - 1))) * rowBytes;
    }

    /** Memory of a page for position {@code pos}, taking one from the pool if needed. */
    protected final MemorySegment pageForWrite(int pos) {
        if (!reserve(pos, pos + 1)) {
            KvPool.Stats s = pages.pool.stats();
            throw new IllegalStateException("the KV budget of " + s.budget() + " bytes is exhausted (" + s.bytesInUse()
                    + " in use): no page of " + pageBytes + " bytes for position " + pos);
        }
        return page(pos);
    }

    /** Stores {@code width} floats of {@code src} at {@code srcOff} as position {@code pos}. */
    public abstract void write(int pos, float[] src, int srcOff);

    /** Value {@code col} of position {@code pos} (exactly as stored, dequantized). */
    public abstract float get(int pos, int col);

    /**
     * Copies head {@code h} of positions p .. p+count-1 (count × headDim floats, contiguous) to {@code dst[dOff..]},
     * exactly: the float attention kernels read a block of positions once in this form for all the query heads and
     * tokens that share it. A block may span two pages.
     */
    void toFloats(int h, int p, int count, float[] dst, int dOff) {
        while (count > 0) {
            int n = Math.min(count, PAGE - (p & (PAGE - 1)));
            copyFloats(page(p), offset(h, p), n * headDim, dst, dOff);
            p += n;
            count -= n;
            dOff += n * headDim;
        }
    }

    /** {@code n} consecutive values of one page from byte {@code off} as floats (not used by Q8_0). */
    abstract void copyFloats(MemorySegment page, long off, int n, float[] dst, int dOff);

    static final class F32 extends KvBuffer {
        F32(int heads, int headDim, PagePool pool) {
            super(heads, headDim, KvType.F32, pool);
        }

        @Override
        public void write(int pos, float[] src, int srcOff) {
            MemorySegment m = pageForWrite(pos);
            for (int h = 0; h < heads; h++) MemorySegment.copy(src, srcOff + h * headDim, m, ValueLayout.JAVA_FLOAT, offset(h, pos), headDim);
        }

        @Override
        public float get(int pos, int col) {
            return page(pos).get(ValueLayout.JAVA_FLOAT, offset(col / headDim, pos) + 4L * (col % headDim));
        }

        @Override
        void copyFloats(MemorySegment page, long off, int n, float[] dst, int dOff) {
            MemorySegment.copy(page, ValueLayout.JAVA_FLOAT, off, dst, dOff, n);
        }
    }

    /** Half-precision storage (llama.cpp's default KV type): half the memory, values rounded to float16. */
    static final class F16 extends KvBuffer {
        private static final ThreadLocal<short[]> HALVES = ThreadLocal.withInitial(() -> new short[0]);

        /** This thread's scratch array of at least {@code n} halves (writes and block reads run on many threads). */
        private static short[] halves(int n) {
            short[] h = HALVES.get();
            if (h.length < n) HALVES.set(h = new short[n]);
            return h;
        }

        F16(int heads, int headDim, PagePool pool) {
            super(heads, headDim, KvType.F16, pool);
        }

        @Override
        public void write(int pos, float[] src, int srcOff) {
            MemorySegment m = pageForWrite(pos);
            short[] row = halves(headDim);
            for (int h = 0; h < heads; h++) {
                int s = srcOff + h * headDim;
                for (int i = 0; i < headDim; i++) row[i] = Float.floatToFloat16(src[s + i]);
                MemorySegment.copy(row, 0, m, ValueLayout.JAVA_SHORT, offset(h, pos), headDim);
            }
        }

        @Override
        public float get(int pos, int col) {
            return Float.float16ToFloat(page(pos).get(ValueLayout.JAVA_SHORT, offset(col / headDim, pos) + 2L * (col % headDim)));
        }

        @Override
        void copyFloats(MemorySegment page, long off, int n, float[] dst, int dOff) {
            short[] h = halves(n);
            MemorySegment.copy(page, ValueLayout.JAVA_SHORT, off, h, 0, n);
            // A plain loop over an array: C2 vectorizes Float.float16ToFloat (vcvtph2ps), exact for infinities and NaN
            for (int i = 0; i < n; i++) dst[dOff + i] = Float.float16ToFloat(h[i]);
        }
    }

    /**
     * ggml's Q8_0 blocks, quantized on write exactly as llama.cpp's quantize_row_q8_0 does (d = max|x| / 127,
     * q = roundf(x / d)); 34 bytes per 32 values. The attention kernels read the blocks as they are.
     */
    static final class Q8_0 extends KvBuffer {
        static final int QK = 32, BLOCK_BYTES = 34;
        private static final BlockQuantizer QUANTIZER = BlockFormats.quantizer(GgmlType.Q8_0);

        Q8_0(int heads, int headDim, PagePool pool) {
            super(heads, headDim, KvType.Q8_0, pool);
            if (headDim % QK != 0) {
                throw new IllegalArgumentException("a Q8_0 KV cache needs a head size that is a multiple of 32; this one is " + headDim);
            }
        }

        @Override
        public void write(int pos, float[] src, int srcOff) {
            MemorySegment m = pageForWrite(pos);
            for (int h = 0; h < heads; h++) QUANTIZER.quantize(src, srcOff + h * headDim, m, offset(h, pos), headDim);
        }

        @Override
        public float get(int pos, int col) {
            int h = col / headDim, c = col % headDim;
            long o = offset(h, pos) + (long) (c / QK) * BLOCK_BYTES;
            MemorySegment m = page(pos);
            return Float.float16ToFloat(m.get(ValueLayout.JAVA_SHORT_UNALIGNED, o)) * m.get(ValueLayout.JAVA_BYTE, o + 2 + c % QK);
        }

        @Override
        void copyFloats(MemorySegment page, long off, int n, float[] dst, int dOff) {
            throw new UnsupportedOperationException("Q8_0 keys and values are read as blocks");
        }
    }
}
