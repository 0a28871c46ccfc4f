package io.moe4j.kernels.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_FLOAT;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Q4_K with its scales decoded at load: each sub-block of 32 weights becomes the weave of {@link FourBitInterleaved}
 * (int lane k of a 64-byte vector holds code byte k of rows 0-3, weight k in its low nibble and k + 16 in its high)
 * followed by the 4 rows' scales d * sc[j] and the 4 rows' offsets -(dmin * m[j]), as floats. A super-block of 256
 * weights is 8 such sub-steps of 96 bytes.
 *
 * <p>Why: the file packs 8 6-bit scales and mins per super-block in 12 bytes. Unpacking them in the loop (row-major
 * {@link Q4_KFormat#dotWide}, or an interleaved kernel that keeps the file's headers) costs more than the rest of the
 * work; here the kernel is Q4_0's, with one more vector addition per row and sub-block to form the 16-entry table
 * (q * scale + offset, the float {@link Q4_KFormat#dequantize} forms). The price is bytes: 24 per 32 weights, where
 * the file has 18.
 */
final class Q4_KInterleaved extends BlockInterleaved {
    static final Q4_KInterleaved INSTANCE = new Q4_KInterleaved();

    /** Code bytes per row and sub-block; a sub-step's bytes; where its scales and offsets start (constants for C2). */
    private static final int CODES = 16, SUB_STEP = ROWS * (CODES + 8), SCALES = ROWS * CODES, OFFSETS = SCALES + 4 * ROWS;

    private Q4_KInterleaved() {
        super("Q4_K", Q4_KFormat.QK, Q4_KFormat.BLOCK_BYTES, Q4_KFormat.QK / QK * (CODES + 8));
    }

    @Override
    void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot) {
        float d = QuantSupport.f16(src, from), dmin = QuantSupport.f16(src, from + 2);
        long scales = src.get(QuantSupport.LE_LONG, from + 4);
        int scalesHigh = src.get(QuantSupport.LE_INT, from + 12);
        for (int j = 0; j < Q4_KFormat.QK / QK; j++) {
            long to = step + (long) SUB_STEP * j, chunk = from + 16 + 32 * (j >> 1);
            int sm = Q4_KFormat.scaleMin(scales, scalesHigh, j), shift = 4 * (j & 1);
            // As Q4_KFormat.dotWide forms them: the 6-bit value as a float times d, and times -dmin.
            dst.set(LE_FLOAT, to + SCALES + 4L * slot, (float) (sm & 0xFF) * d);
            dst.set(LE_FLOAT, to + OFFSETS + 4L * slot, (float) (sm >>> 8) * -dmin);
            // Code byte k = weight k | weight k + 16 << 4, 8 at a time (the chunk read as longs: loading a 4 GB file
            // byte by byte took seconds).
            for (int half = 0; half < 2; half++) {
                long lo = src.get(QuantSupport.LE_LONG, chunk + 8 * half) >>> shift & NIBBLES;
                long hi = src.get(QuantSupport.LE_LONG, chunk + 16 + 8 * half) >>> shift & NIBBLES;
                long codes = lo | hi << 4;
                for (int k = 0; k < 8; k++) dst.set(ValueLayout.JAVA_BYTE, to + 4L * (8 * half + k) + slot, (byte) (codes >>> 8 * k));
            }
        }
    }

    private static final long NIBBLES = 0x0F0F0F0F0F0F0F0FL;

    @Override
    void decodeBlock(MemorySegment src, long step, int slot, float[] dst, int o) {
        for (int j = 0; j < Q4_KFormat.QK / QK; j++) {
            long p = step + (long) SUB_STEP * j;
            float scale = src.get(LE_FLOAT, p + SCALES + 4L * slot), offset = src.get(LE_FLOAT, p + OFFSETS + 4L * slot);
            for (int k = 0; k < CODES; k++) {
                int q = src.get(ValueLayout.JAVA_BYTE, p + 4L * k + slot) & 0xFF;
                dst[o + QK * j + k] = scale * (q & 15) + offset;
                dst[o + QK * j + k + CODES] = scale * (q >>> 4) + offset;
            }
        }
    }

    @Override
    public void dequantizeLanes(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) {
            dequantizeLanesScalar(src, group, slot, dst, dstOffset, n, scratch);
            return;
        }
        int half = n / 2, shift = 8 * slot;
        for (int j = 0, nj = n / QK; j < nj; j++) {
            long p = group + (long) SUB_STEP * j;
            // The 16 weights the codes stand for, q * scale + offset for q = 0..15 (as ints, to be permuted).
            IntVector t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, src.get(LE_FLOAT, p + SCALES + 4L * slot)))
                    .add(FloatVector.broadcast(F512, src.get(LE_FLOAT, p + OFFSETS + 4L * slot))).reinterpretAsInts();
            IntVector v = IntVector.fromMemorySegment(I512, src, p, LE);
            v.lanewise(LSHR, shift).and(15).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + 16 * j);
            v.lanewise(LSHR, shift + 4).and(15).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + half + 16 * j);
        }
    }

    /**
     * Each row keeps the two 16-lane accumulators of {@link Q4_KFormat#dotWide} (lanes i % 32 of its weights) and its
     * final reduction, so its result is the same float. The loop is {@link FourBitInterleaved#dot4}'s, with the
     * table formed by a multiplication and an addition, written out per row: through a helper returning the vector,
     * C2 boxed it (L2-resident, 1 core: 5 GB/s, written out 23).
     */
    @Override
    public void dot4(MemorySegment src, long group, float[] x, int xOffset, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) {
            dot4Scalar(src, group, x, xOffset, n, out, scratch);
            return;
        }
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        for (int j = 0, nj = n / QK; j < nj; j++) {
            long p = group + (long) SUB_STEP * j;
            int xo = xOffset + QK * j;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE), t;
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS))).reinterpretAsInts();
            a0 = ((FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, a0);
            a1 = ((FloatVector) v.lanewise(LSHR, 4).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, a1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 4))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 4))).reinterpretAsInts();
            b0 = ((FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, b0);
            b1 = ((FloatVector) v.lanewise(LSHR, 12).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, b1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 8))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 8))).reinterpretAsInts();
            c0 = ((FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, c0);
            c1 = ((FloatVector) v.lanewise(LSHR, 20).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, c1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 12))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 12))).reinterpretAsInts();
            d0 = ((FloatVector) v.lanewise(LSHR, 24).and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, d0);
            d1 = ((FloatVector) v.lanewise(LSHR, 28).selectFrom(t).reinterpretAsFloats()).fma(x1, d1);
        }
        float[] l = scratch.f;
        a0.add(a1).intoArray(l, 0);
        b0.add(b1).intoArray(l, 16);
        c0.add(c1).intoArray(l, 32);
        d0.add(d1).intoArray(l, 48);
        sum16x4(l, out, 0);
    }

    /** {@link #dot4} for two tokens: each row's weights looked up once, then multiplied into both tokens' accumulators. */
    @Override
    public boolean dot4Pair(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        FloatVector e0 = a0, e1 = a0, f0 = a0, f1 = a0, g0 = a0, g1 = a0, k0 = a0, k1 = a0;
        for (int j = 0, nj = n / QK; j < nj; j++) {
            long p = group + (long) SUB_STEP * j;
            int xo = xOffset + QK * j;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            FloatVector y0 = FloatVector.fromArray(F512, x, xo + xStride), y1 = FloatVector.fromArray(F512, x, xo + xStride + 16), w0, w1;
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE), t;
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS))).reinterpretAsInts();
            w0 = (FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 4).and(15).selectFrom(t).reinterpretAsFloats();
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x1, a1);
            e0 = w0.fma(y0, e0);
            e1 = w1.fma(y1, e1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 4))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 4))).reinterpretAsInts();
            w0 = (FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 12).and(15).selectFrom(t).reinterpretAsFloats();
            b0 = w0.fma(x0, b0);
            b1 = w1.fma(x1, b1);
            f0 = w0.fma(y0, f0);
            f1 = w1.fma(y1, f1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 8))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 8))).reinterpretAsInts();
            w0 = (FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 20).and(15).selectFrom(t).reinterpretAsFloats();
            c0 = w0.fma(x0, c0);
            c1 = w1.fma(x1, c1);
            g0 = w0.fma(y0, g0);
            g1 = w1.fma(y1, g1);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 12))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 12))).reinterpretAsInts();
            w0 = (FloatVector) v.lanewise(LSHR, 24).and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 28).selectFrom(t).reinterpretAsFloats();
            d0 = w0.fma(x0, d0);
            d1 = w1.fma(x1, d1);
            k0 = w0.fma(y0, k0);
            k1 = w1.fma(y1, k1);
        }
        float[] l = scratch.f;
        a0.add(a1).intoArray(l, 0);
        b0.add(b1).intoArray(l, 16);
        c0.add(c1).intoArray(l, 32);
        d0.add(d1).intoArray(l, 48);
        sum16x4(l, out, 0);
        e0.add(e1).intoArray(l, 0);
        f0.add(f1).intoArray(l, 16);
        g0.add(g1).intoArray(l, 32);
        k0.add(k1).intoArray(l, 48);
        sum16x4(l, out, 4);
        return true;
    }

    /**
     * {@link #dot4} for four tokens in two passes, one per nibble half of every 32 weights, as
     * {@link FourBitInterleaved#dot4Quad} does, with this layout's table (q * scale + offset) and offsets.
     */
    @Override
    public boolean dot4Quad(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        quadPass(src, group, 0, x, xOffset, xStride, n / QK, scratch.lo);
        quadPass(src, group, 4, x, xOffset + 16, xStride, n / QK, scratch.hi);
        sumQuad(scratch.lo, scratch.hi, out);
        return true;
    }

    /** One half of {@link #dot4Quad}: row r's codes are nibble (8r + {@code shift}) / 4 of each int lane. */
    private static void quadPass(MemorySegment s, long group, int shift, float[] x, int xOffset, int xStride, int nb, float[] l) {
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int b = 0; b < nb; b++) {
            long p = group + (long) SUB_STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + xStride);
            FloatVector x2 = FloatVector.fromArray(F512, x, xo + 2 * xStride), x3 = FloatVector.fromArray(F512, x, xo + 3 * xStride), w;
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE).lanewise(LSHR, shift), t;
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS))).reinterpretAsInts();
            w = (FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats();
            a0 = w.fma(x0, a0);
            a1 = w.fma(x1, a1);
            a2 = w.fma(x2, a2);
            a3 = w.fma(x3, a3);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 4))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 4))).reinterpretAsInts();
            w = (FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats();
            b0 = w.fma(x0, b0);
            b1 = w.fma(x1, b1);
            b2 = w.fma(x2, b2);
            b3 = w.fma(x3, b3);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 8))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 8))).reinterpretAsInts();
            w = (FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats();
            c0 = w.fma(x0, c0);
            c1 = w.fma(x1, c1);
            c2 = w.fma(x2, c2);
            c3 = w.fma(x3, c3);
            t = Q4_KFormat.IOTA16.mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SCALES + 12))).add(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + OFFSETS + 12))).reinterpretAsInts();
            w = (FloatVector) v.lanewise(LSHR, 24).and(15).selectFrom(t).reinterpretAsFloats();
            d0 = w.fma(x0, d0);
            d1 = w.fma(x1, d1);
            d2 = w.fma(x2, d2);
            d3 = w.fma(x3, d3);
        }
        // Pair (row r, token t) at 16 * (4 * t + r), as sumQuad reads it. Written out: through a helper taking one
        // token's 4 vectors, C2 left them boxed and the kernel ran 10x slower.
        a0.intoArray(l, 0);
        b0.intoArray(l, 16);
        c0.intoArray(l, 32);
        d0.intoArray(l, 48);
        a1.intoArray(l, 64);
        b1.intoArray(l, 80);
        c1.intoArray(l, 96);
        d1.intoArray(l, 112);
        a2.intoArray(l, 128);
        b2.intoArray(l, 144);
        c2.intoArray(l, 160);
        d2.intoArray(l, 176);
        a3.intoArray(l, 192);
        b3.intoArray(l, 208);
        c3.intoArray(l, 224);
        d3.intoArray(l, 240);
    }
}
