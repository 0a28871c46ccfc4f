package io.moe4j.kernels.ops;

import io.moe4j.kernels.GgmlType;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.Rope;
import io.moe4j.kernels.quant.BlockFormats;
import io.moe4j.kernels.quant.BlockQuantizer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

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
        first = Math.min(src.first, length);
        released = first >> PAGE_SHIFT;
        for (int i = released; i < n; i++) {
            pages.pool.retain(src.pages.table[i]);
            pages.table[i] = src.pages.table[i];
            pages.held++;
        }
    }

    /**
     * The first position stored; the pages before its page were given back (held null in the table): always
     * {@code released == first >> PAGE_SHIFT}. A page boundary unless a shift moved a sliding window's rows.
     */
    private int first, released;

    /** The first position still stored (0 unless {@link #releaseBefore} or a shift dropped a leading part). */
    @Override
    public int firstStored() {
        return first;
    }

    /** Gives back the pages all of whose positions are before {@code pos} (out of a sliding window). */
    @Override
    public void releaseBefore(int pos) {
        int upTo = Math.min(pos >> PAGE_SHIFT, pages.table.length);
        for (int i = released; i < upTo; i++) pages.release(i);
        if (upTo > released) {
            released = upTo;
            first = Math.max(first, upTo << PAGE_SHIFT);
        }
    }

    /** Drops all positions at or after {@code length}: the pages past it go back to the pool. */
    @Override
    public void truncate(int length) {
        if (length < 0) throw new IllegalArgumentException("negative length " + length);
        if (length == 0) first = released = 0;
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

    // ---- context shift (CpuBackend.shiftKv: reserveShift on every store first, then shift, or undoReserveShift) ----

    /** Where the rows of a shift come from: positions from here to the length move (what the store holds past the gap). */
    private int shiftSource(int keep, int discard) {
        return Math.max(keep + discard, first);
    }

    /**
     * Takes the pages that a shift of {@code discard} positions after {@code keep} writes into, pages given back
     * below {@link #firstStored} included, and copies those shared with another store; false, with none of them
     * taken, when the pool has no room.
     */
    public boolean reserveShift(int keep, int discard, int length) {
        int from = shiftSource(keep, discard);
        if (from >= length) return true;
        int last = (length - 1) >> PAGE_SHIFT;
        if (last >= pages.table.length || pages.table[last] == null) {
            throw new IllegalArgumentException("the store does not hold positions up to " + length);
        }
        int old = released;
        released = Math.min(released, (from - discard) >> PAGE_SHIFT);
        if (reserve(from - discard, length - discard)) return true;
        for (int i = released; i < old; i++) pages.release(i);
        released = old;
        return false;
    }

    /** Gives back what {@link #reserveShift} took below {@link #firstStored} (another store's reservation failed). */
    public void undoReserveShift() {
        releaseBefore(first);
    }

    /**
     * Moves positions {@code [max(keep + discard, firstStored), length)} down by {@code discard}, each head's row
     * rotated by {@code cos/sin} as {@code rope} rotates (null: moved as stored), after {@link #reserveShift}; then
     * drops the positions from {@code length - discard} on and the pages before the new first position.
     */
    public void shift(Rope rope, float[] cos, float[] sin, int keep, int discard, int length) {
        int from = shiftSource(keep, discard), newLength = length - discard;
        int newFirst = first <= keep ? first : Math.max(keep, first - discard);
        if (from < length) {
            float[] row = rope == null ? null : new float[headDim];
            int rotated = rope == null ? 0 : rotatedValues(rope.nRot());
            for (int h = 0; h < heads; h++) {
                for (int p = from; p < length; ) {
                    int d = p - discard;
                    // a run of positions within one source page and one destination page: one copy per head
                    int n = Math.min(length - p, Math.min(PAGE - (p & (PAGE - 1)), PAGE - (d & (PAGE - 1))));
                    MemorySegment.copy(page(p), offset(h, p), page(d), offset(h, d), (long) n * rowBytes);
                    if (row != null) {
                        for (int i = 0; i < n; i++) {
                            readRow(h, d + i, row);
                            rope.apply(row, 0, 1, headDim, cos, sin, 0);
                            writeRow(h, d + i, row, rotated);
                        }
                    }
                    p += n;
                }
            }
        }
        for (int i = (newLength + PAGE - 1) >> PAGE_SHIFT; i < pages.table.length; i++) pages.release(i);
        first = Math.min(newFirst, newLength);
        int upTo = Math.min(first >> PAGE_SHIFT, pages.table.length);
        for (int i = 0; i < upTo; i++) pages.release(i);
        released = first >> PAGE_SHIFT;
    }

    /** Values of a row that a rotation of the first {@code nRot} dimensions rewrites (Q8_0: whole blocks). */
    int rotatedValues(int nRot) {
        return nRot;
    }

    /** Head {@code h} of position {@code pos} as floats (exactly as stored, dequantized) into {@code dst[0, headDim)}. */
    abstract void readRow(int h, int pos, float[] dst);

    /** Stores the first {@code n} values of head {@code h} of position {@code pos} from {@code src}, rounded as on write. */
    abstract void writeRow(int h, int pos, float[] src, int n);

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

        @Override
        void readRow(int h, int pos, float[] dst) {
            copyFloats(page(pos), offset(h, pos), headDim, dst, 0);
        }

        @Override
        void writeRow(int h, int pos, float[] src, int n) {
            MemorySegment.copy(src, 0, page(pos), ValueLayout.JAVA_FLOAT, offset(h, pos), n);
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
            // A plain counted loop: C2 vectorizes Float.float16ToFloat of the segment's halves (vcvtph2ps), exact for
            // infinities and NaN; measured 0.049 ns per value, against 0.056 through a short[] copy and 0.16 for the
            // Vector API bit trick (F16Format.toFloats), which has no half conversion of its own.
            for (int i = 0; i < n; i++) dst[dOff + i] = Float.float16ToFloat(page.get(ValueLayout.JAVA_SHORT, off + 2L * i));
        }

        @Override
        void readRow(int h, int pos, float[] dst) {
            copyFloats(page(pos), offset(h, pos), headDim, dst, 0);
        }

        @Override
        void writeRow(int h, int pos, float[] src, int n) {
            short[] row = halves(n);
            for (int i = 0; i < n; i++) row[i] = Float.floatToFloat16(src[i]);
            MemorySegment.copy(row, 0, page(pos), ValueLayout.JAVA_SHORT, offset(h, pos), n);
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

        /**
         * Head {@code h} of positions p .. p+count-1 as the blocks hold them, for the attention kernels: the int8
         * codes as floats (exact) to {@code codes[j * headDim ..]}, and each 32-value block's scale to
         * {@code scales[j * headDim / 32 ..]}, for the j-th position. The kernels then compute with the codes and
         * scales in the order the blocks define (d × (q · codes) per block), from arrays that every query head and
         * token sharing the block reads.
         */
        void toCodes(int h, int p, int count, float[] codes, float[] scales) {
            int nb = headDim / QK;
            for (int j = 0; j < count; j++) {
                MemorySegment m = page(p + j);
                long o = offset(h, p + j);
                for (int b = 0, c = j * headDim, d = j * nb; b < nb; b++, o += BLOCK_BYTES, c += QK) {
                    scales[d + b] = Float.float16ToFloat(m.get(LE_SHORT, o));
                    codesAsFloats(m, o + 2, codes, c);
                }
            }
        }

        /** The 32 int8 codes at byte {@code o} of {@code m} as floats into {@code dst[dOff ..]}. */
        private static void codesAsFloats(MemorySegment m, long o, float[] dst, int dOff) {
            ((FloatVector) ByteVector.fromMemorySegment(B64, m, o, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F256, 0)).intoArray(dst, dOff);
            ((FloatVector) ByteVector.fromMemorySegment(B64, m, o + 8, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F256, 0)).intoArray(dst, dOff + 8);
            ((FloatVector) ByteVector.fromMemorySegment(B64, m, o + 16, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F256, 0)).intoArray(dst, dOff + 16);
            ((FloatVector) ByteVector.fromMemorySegment(B64, m, o + 24, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F256, 0)).intoArray(dst, dOff + 24);
        }

        private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
        private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
        private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        /** Whole blocks: a block that holds one rotated value is quantized again, the later ones move as stored. */
        @Override
        int rotatedValues(int nRot) {
            return Math.min(headDim, (nRot + QK - 1) / QK * QK);
        }

        @Override
        void readRow(int h, int pos, float[] dst) {
            MemorySegment m = page(pos);
            long o = offset(h, pos);
            for (int b = 0; b < headDim; b += QK, o += BLOCK_BYTES) {
                float d = Float.float16ToFloat(m.get(ValueLayout.JAVA_SHORT_UNALIGNED, o));
                for (int i = 0; i < QK; i++) dst[b + i] = d * m.get(ValueLayout.JAVA_BYTE, o + 2 + i);
            }
        }

        @Override
        void writeRow(int h, int pos, float[] src, int n) {
            QUANTIZER.quantize(src, 0, page(pos), offset(h, pos), n);
        }
    }
}
