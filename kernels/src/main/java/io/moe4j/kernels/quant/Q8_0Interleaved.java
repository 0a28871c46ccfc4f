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
        out[0] = sum16(l, 0);
        out[1] = sum16(l, 16);
        out[2] = sum16(l, 32);
        out[3] = sum16(l, 48);
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
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            FloatVector y0 = FloatVector.fromArray(F512, x, xo + xStride), y1 = FloatVector.fromArray(F512, x, xo + xStride + 16), w0, w1;
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 4, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 20, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p)));
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x1, a1);
            e0 = w0.fma(y0, e0);
            e1 = w1.fma(y1, e1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + BLOCK)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + BLOCK)));
            b0 = w0.fma(x0, b0);
            b1 = w1.fma(x1, b1);
            f0 = w0.fma(y0, f0);
            f1 = w1.fma(y1, f1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * BLOCK)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 2 * BLOCK)));
            c0 = w0.fma(x0, c0);
            c1 = w1.fma(x1, c1);
            g0 = w0.fma(y0, g0);
            g1 = w1.fma(y1, g1);
            w0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * BLOCK)));
            w1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(FloatVector.broadcast(F512, s.get(LE_FLOAT, p + 3 * BLOCK)));
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
        out[0] = sum16(l, 0);
        out[1] = sum16(l, 16);
        out[2] = sum16(l, 32);
        out[3] = sum16(l, 48);
        e0.add(e1).intoArray(l, 0);
        f0.add(f1).intoArray(l, 16);
        g0.add(g1).intoArray(l, 32);
        k0.add(k1).intoArray(l, 48);
        out[4] = sum16(l, 0);
        out[5] = sum16(l, 16);
        out[6] = sum16(l, 32);
        out[7] = sum16(l, 48);
        return true;
    }
}
