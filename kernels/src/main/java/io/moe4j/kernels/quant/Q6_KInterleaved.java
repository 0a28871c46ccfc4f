package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.LE_FLOAT;
import static jdk.incubator.vector.VectorOperators.B2F;

/**
 * Q6_K in the layout of {@link Int8Interleaved}: each 16 weights' scale d * scale[g] as a float (the product the
 * row-major kernels form), each weight's 6-bit value q - 32 as a signed byte. A super-block of 256 weights becomes 8
 * sub-steps of 32.
 */
final class Q6_KInterleaved extends Int8Interleaved {
    static final Q6_KInterleaved INSTANCE = new Q6_KInterleaved();

    /** A row's sub-block (2 float scales + 32 codes) and a sub-step (that of all 4 rows), as constants for C2. */
    private static final int SUB = 8 + QK, SUB_STEP = ROWS * SUB;

    private Q6_KInterleaved() {
        super("Q6_K", Q6_KFormat.QK, Q6_KFormat.BLOCK_BYTES, 2);
    }

    /**
     * The super-block's codes are unpacked with the row-major kernel's vector code (256 at once), then copied 32 at a
     * time. Packing on one thread into memory already faulted in, GB/s of file bytes: 0.35 with the codes assembled
     * one by one, 1.6 this way.
     */
    @Override
    void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot) {
        byte[] q = new byte[Q6_KFormat.QK];
        Q6_KFormat.unpack(src, from, q);
        float d = Q6_KFormat.superScale(src, from);
        for (int j = 0; j < Q6_KFormat.QK / QK; j++) {
            long to = subBlock(step, j, slot);
            putScales(dst, to, Q6_KFormat.groupScale(src, from, 2 * j) * d, Q6_KFormat.groupScale(src, from, 2 * j + 1) * d);
            MemorySegment.copy(q, QK * j, dst, ValueLayout.JAVA_BYTE, to + codes, QK);
        }
    }

    /**
     * Each row keeps the two 16-lane accumulators of {@link Q6_KFormat#dotWide} (lanes i % 32 of its weights, the
     * first 16 with the scale of their group of 16, the last 16 with the next group's) and its final reduction, so its
     * result is the same float. The loop is {@link Q8_0Interleaved#dot4}'s with a second scale per row.
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
            a0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p))).fma(x0, a0);
            a1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 4))).fma(x1, a1);
            b0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SUB))).fma(x0, b0);
            b1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SUB + 4))).fma(x1, b1);
            c0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * SUB))).fma(x0, c0);
            c1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * SUB + 4))).fma(x1, c1);
            d0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * SUB))).fma(x0, d0);
            d1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * SUB + 4))).fma(x1, d1);
        }
        float[] l = scratch.f;
        a0.add(a1).intoArray(l, 0);
        b0.add(b1).intoArray(l, 16);
        c0.add(c1).intoArray(l, 32);
        d0.add(d1).intoArray(l, 48);
        sum16x4(l, out, 0);
    }

    /** {@link #dot4} for two tokens: each row's weights decoded once, then multiplied into both tokens' accumulators. */
    @Override
    public boolean dot4Pair(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        MemorySegment s = src;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        FloatVector e0 = a0, e1 = a0, f0 = a0, f1 = a0, g0 = a0, g1 = a0, k0 = a0, k1 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) SUB_STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            FloatVector y0 = FloatVector.fromArray(F512, x, xo + xStride), y1 = FloatVector.fromArray(F512, x, xo + xStride + 16), w0, w1;
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 4)));
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x1, a1);
            e0 = w0.fma(y0, e0);
            e1 = w1.fma(y1, e1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SUB)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + SUB + 4)));
            b0 = w0.fma(x0, b0);
            b1 = w1.fma(x1, b1);
            f0 = w0.fma(y0, f0);
            f1 = w1.fma(y1, f1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * SUB)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * SUB + 4)));
            c0 = w0.fma(x0, c0);
            c1 = w1.fma(x1, c1);
            g0 = w0.fma(y0, g0);
            g1 = w1.fma(y1, g1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * SUB + 8, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * SUB)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * SUB + 24, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * SUB + 4)));
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
     * {@link #dot4} for four tokens in two passes, one per half of every 32 weights (each with its own scale), as
     * {@link Q8_0Interleaved#dot4Quad} does; the kernel is Q8_0's with this layout's offsets as constants.
     */
    @Override
    public boolean dot4Quad(MemorySegment src, long group, float[] x, int xOffset, int xStride, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) return false;
        quadPass(src, group, 0, 8, x, xOffset, xStride, n / QK, scratch.lo);
        quadPass(src, group, 4, 24, x, xOffset + 16, xStride, n / QK, scratch.hi);
        sumQuad(scratch.lo, scratch.hi, out);
        return true;
    }

    /** One half of {@link #dot4Quad}: its scale and 16 codes start {@code scale} and {@code codes} bytes into each row's sub-block. */
    private static void quadPass(MemorySegment s, long group, int scale, int codes, float[] x, int xOffset, int xStride, int nb, float[] l) {
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int b = 0; b < nb; b++) {
            long at = group + (long) SUB_STEP * b, sc = at + scale, p = at + codes;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + xStride);
            FloatVector x2 = FloatVector.fromArray(F512, x, xo + 2 * xStride), x3 = FloatVector.fromArray(F512, x, xo + 3 * xStride), w;
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc)));
            a0 = w.fma(x0, a0);
            a1 = w.fma(x1, a1);
            a2 = w.fma(x2, a2);
            a3 = w.fma(x3, a3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + SUB, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + SUB)));
            b0 = w.fma(x0, b0);
            b1 = w.fma(x1, b1);
            b2 = w.fma(x2, b2);
            b3 = w.fma(x3, b3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * SUB, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + 2 * SUB)));
            c0 = w.fma(x0, c0);
            c1 = w.fma(x1, c1);
            c2 = w.fma(x2, c2);
            c3 = w.fma(x3, c3);
            w = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * SUB, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, sc + 3 * SUB)));
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
