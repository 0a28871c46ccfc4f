package io.moe4j.kernels;

/**
 * Keys or values of one layer of one sequence, for consecutive positions (a row of {@code heads × headDim} values
 * per position), in pages of {@link #PAGE} positions that it takes from its {@link KvPool} as positions are
 * {@linkplain #reserve reserved} and gives back when they are dropped. Its memory belongs to the backend of the
 * pool: positions are written by {@link Backend#appendKv}, moved by {@link Backend#shiftKv} and read by
 * {@link Backend#attention}; this interface is the page bookkeeping, the same for every backend.
 */
public interface KvStore extends AutoCloseable {
    /** Positions per page. */
    int PAGE = 256;

    /** Values per position. */
    int width();

    int headDim();

    KvPool pool();

    /** Bytes of the pages held. */
    long bytes();

    /** Pages held. */
    int pagesHeld();

    /**
     * Makes sure positions {@code [0, to)} have pages, except those given back by {@link #releaseBefore}, and that
     * the pages of positions {@code [from, to)}, which are about to be written, are this store's own: a page shared
     * with another store ({@link #shareFrom}) is copied first. False when the pool's budget is exhausted (pages taken
     * so far are kept, and given back as usual).
     */
    boolean reserve(int from, int to);

    /**
     * Makes this empty store hold positions {@code [0, length)} of {@code src} by sharing its pages (no copy; a
     * shared page is copied when either store writes into it). Both must have the same type, shape and pool.
     */
    void shareFrom(KvStore src, int length);

    /**
     * The first position still stored: 0 unless {@link #releaseBefore} dropped a leading part (then a page
     * boundary) or a {@linkplain Backend#shiftKv context shift} moved what such a store held (then any position).
     */
    int firstStored();

    /** Gives back the pages all of whose positions are before {@code pos} (out of a sliding window). */
    void releaseBefore(int pos);

    /** Drops all positions at or after {@code length}: the pages past it go back to the pool. */
    void truncate(int length);

    /** Gives every page back; the store may be written again from position 0. */
    @Override
    void close();
}
