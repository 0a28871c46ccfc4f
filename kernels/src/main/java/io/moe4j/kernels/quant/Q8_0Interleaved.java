package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_FLOAT;
import static jdk.incubator.vector.VectorOperators.B2F;

/**
 * Q8_0 in the layout of {@link Int8Interleaved}: a step is the 4 rows' blocks in turn, each a float scale and the
 * file's 32 code bytes. Measured streaming 512 MB of 2048-column rows on 2 threads (GB/s of file bytes): row-major
 * 36-46, interleaved 52-55.
 */
final class Q8_0Interleaved extends Int8Interleaved {
    static final Q8_0Interleaved INSTANCE = new Q8_0Interleaved();

    /** A block here (float scale + codes) and a step (the block of all 4 rows), as constants for C2. */
    private static final int BLOCK = 4 + QK, STEP = ROWS * BLOCK;

    private Q8_0Interleaved() {
        super("Q8_0", QK, Q8_0Format.BLOCK_BYTES, 1);
    }

    @Override
    void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot) {
        long to = subBlock(step, 0, slot);
        putScales(dst, to, QuantSupport.f16(src, from), 0);
        MemorySegment.copy(src, from + 2, dst, to + codes, QK);
    }

    /**
     * Each row keeps the two 16-lane accumulators of {@link Q8_0Format#dotWide} (lanes i % 32 of its weights) and its
     * final reduction, so its result is the same float.
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
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16), d;
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p));
            a0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, a0);
            a1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, a1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + BLOCK));
            b0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, b0);
            b1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, b1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * BLOCK));
            c0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, c0);
            c1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, c1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * BLOCK));
            d0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, d0);
            d1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, d1);
        }
        float[] l = scratch.f;
        a0.add(a1).intoArray(l, 0);
        b0.add(b1).intoArray(l, 16);
        c0.add(c1).intoArray(l, 32);
        d0.add(d1).intoArray(l, 48);
        sum16x4(l, out, 0);
    }

    /**
     * {@link #dot4} for two tokens: each row's weights decoded once, then multiplied into both tokens' accumulators.
     * Each row's scale is read and broadcast once per block, for both halves: written with the scale read twice (once
     * per half), C2 compiled this kernel one of two ways from one JVM to the next, and in the slow one (half of the
     * JFR samples on the scale loads) a 2-token decode step of the Mixtral-layout serving model took 19-21 ms instead
     * of 10-11 in 4 of 14 JVMs; reading it once, 0 of 14 JVMs compiled the slow way.
     */
    @Override
    public boolean dot4Pair(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        FloatVector e0 = a0, e1 = a0, f0 = a0, f1 = a0, g0 = a0, g1 = a0, k0 = a0, k1 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            FloatVector y0 = FloatVector.fromArray(F512, x, xo + xStride), y1 = FloatVector.fromArray(F512, x, xo + xStride + 16), w0, w1, d;
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p));
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 4, LE).convertShape(B2F, F512, 0)).mul(d);
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 20, LE).convertShape(B2F, F512, 0)).mul(d);
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x1, a1);
            e0 = w0.fma(y0, e0);
            e1 = w1.fma(y1, e1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + BLOCK));
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d);
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d);
            b0 = w0.fma(x0, b0);
            b1 = w1.fma(x1, b1);
            f0 = w0.fma(y0, f0);
            f1 = w1.fma(y1, f1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * BLOCK));
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d);
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d);
            c0 = w0.fma(x0, c0);
            c1 = w1.fma(x1, c1);
            g0 = w0.fma(y0, g0);
            g1 = w1.fma(y1, g1);
            d = FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * BLOCK));
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d);
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d);
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
     * {@link #dot4} for four tokens in two passes over the group, one per half of every block (weights 0-15, then
     * 16-31): each pass keeps one 16-lane accumulator per row and token, 16 in all, and decodes each half-block once
     * for the four tokens. The second pass reads the group from L1/L2 (a group of 2048 columns is 9 KB).
     */
    @Override
    public boolean dot4Quad(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        quadPass(src, group, 4, x, xOffset, xStride, n / QK, scratch.lo);
        quadPass(src, group, 20, x, xOffset + 16, xStride, n / QK, scratch.hi);
        sumQuad(scratch.lo, scratch.hi, out);
        return true;
    }

    /** One half of {@link #dot4Quad}: its 16 codes start {@code codes} bytes into each row's block. */
    private static void quadPass(MemorySegment s, long group, int codes, float[] x, int xOffset, int xStride, int nb, float[] l) {
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int b = 0; b < nb; b++) {
            long sc = group + (long) STEP * b, p = sc + codes;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + xStride);
            FloatVector x2 = FloatVector.fromArray(F512, x, xo + 2 * xStride), x3 = FloatVector.fromArray(F512, x, xo + 3 * xStride), w;
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc)));
            a0 = w.fma(x0, a0);
            a1 = w.fma(x1, a1);
            a2 = w.fma(x2, a2);
            a3 = w.fma(x3, a3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + BLOCK)));
            b0 = w.fma(x0, b0);
            b1 = w.fma(x1, b1);
            b2 = w.fma(x2, b2);
            b3 = w.fma(x3, b3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + 2 * BLOCK)));
            c0 = w.fma(x0, c0);
            c1 = w.fma(x1, c1);
            c2 = w.fma(x2, c2);
            c3 = w.fma(x3, c3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + 3 * BLOCK)));
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
