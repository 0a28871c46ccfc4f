package io.moe4j.compress;

import java.io.ByteArrayOutputStream;

/**
 * A range coder (LZMA's carry-propagating scheme, widened to a 48-bit range so that frequency totals up to 2^24
 * keep 16 bits of precision): each symbol narrows the range to its share {@code freq / total} of it, and bytes
 * leave from the top as soon as they are settled. {@link RangeDecoder} reverses it.
 */
final class RangeEncoder {
    static final int RANGE_BITS = 48;
    static final long TOP = 1L << RANGE_BITS;
    /** The range is renormalized (a byte shifted out) whenever it falls below this. */
    static final long BOTTOM = 1L << (RANGE_BITS - 8);
    private static final long LOW_MASK = BOTTOM - 1;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private long low;
    private long range = TOP - 1;
    /** The last byte not yet written (a carry may still change it) and how many 0xFF bytes follow it. */
    private int cache;
    private long pending = 1;

    /** Codes the symbol occupying {@code [start, start + freq)} of {@code [0, total)}; {@code total <= 2^24}. */
    void encode(long start, long freq, long total) {
        long r = range / total;
        low += start * r;
        range = freq * r;
        while (range < BOTTOM) {
            range <<= 8;
            shiftLow();
        }
    }

    /** Codes {@code bits} raw bits of {@code value} (at most 16), each value equally likely. */
    void encodeBits(int value, int bits) {
        encode(value, 1, 1L << bits);
    }

    private void shiftLow() {
        if (low < (0xFFL << (RANGE_BITS - 8)) || low >= TOP) {
            int carry = (int) (low >>> RANGE_BITS);
            int b = cache;
            do {
                out.write((b + carry) & 0xFF);
                b = 0xFF;
            } while (--pending != 0);
            cache = (int) ((low >>> (RANGE_BITS - 8)) & 0xFF);
        }
        pending++;
        low = (low & LOW_MASK) << 8;
    }

    /**
     * Writes out what is left and returns the coded bytes; the encoder is finished afterwards. The final value is
     * the number in [low, low + range) with the most trailing zero bits, and trailing zero bytes are left out: the
     * decoder reads zeros past the end, so a chunk ends in two or three bytes instead of seven.
     */
    byte[] finish() {
        for (int k = RANGE_BITS; k > 0; k--) {
            long mask = (1L << k) - 1;
            long v = (low + mask) & ~mask;
            if (v >= low && v - low < range) {
                low = v;
                break;
            }
        }
        for (int i = 0; i < RANGE_BITS / 8 + 1; i++) shiftLow();
        byte[] b = out.toByteArray();
        int n = b.length;
        while (n > 0 && b[n - 1] == 0) n--;
        return java.util.Arrays.copyOf(b, n);
    }
}
