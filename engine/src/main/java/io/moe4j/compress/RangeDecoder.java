package io.moe4j.compress;

/**
 * Decodes what {@link RangeEncoder} wrote. Reading past the end of the data yields zero bytes (a well-formed stream
 * never needs them); a damaged stream is detected where a decoded value lies outside the frequency total, and
 * otherwise by the checksums of the container.
 */
final class RangeDecoder {
    private final byte[] in;
    private int pos;
    private long code;
    private long range = RangeEncoder.TOP - 1;
    private long r;

    RangeDecoder(byte[] in) {
        this.in = in;
        // the encoder's first byte is its initial cache (always 0), then RANGE_BITS / 8 bytes fill the code
        for (int i = 0; i < RangeEncoder.RANGE_BITS / 8 + 1; i++) code = ((code << 8) | next()) & (RangeEncoder.TOP - 1);
    }

    private int next() {
        if (pos < in.length) return in[pos++] & 0xFF;
        pos++;
        return 0;
    }

    /** First half of decoding a symbol: the value in {@code [0, total)} that identifies it. */
    long target(long total) {
        r = range / total;
        long v = code / r;
        if (v >= total) throw new CorruptDataException("the coded data is damaged (a decoded value lies outside its range)");
        return v;
    }

    /** Second half: consumes the symbol {@code [start, start + freq)} that {@link #target} pointed into. */
    void consume(long start, long freq) {
        code -= start * r;
        range = freq * r;
        while (range < RangeEncoder.BOTTOM) {
            code = ((code << 8) | next()) & (RangeEncoder.TOP - 1);
            range <<= 8;
        }
    }

    int decodeBits(int bits) {
        int v = (int) target(1L << bits);
        consume(v, 1);
        return v;
    }

    /** Bytes read past the end of the data: more than the encoder's flush can explain means the data is cut short. */
    int overrun() {
        return Math.max(0, pos - in.length);
    }
}
