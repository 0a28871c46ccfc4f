package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static jdk.incubator.vector.VectorOperators.B2F;

/**
 * Q8_0 in the layout of {@link ScaledInterleaved}: a step is the 4 rows' blocks in turn, each a float scale and the
 * file's 32 code bytes. Measured streaming 512 MB of 2048-column rows on 2 threads (GB/s of file bytes): row-major
 * 36-46, interleaved 52-55.
 */
final class Q8_0Interleaved extends ScaledInterleaved {
    static final Q8_0Interleaved INSTANCE = new Q8_0Interleaved();

    /** Code bytes per block; a block here (float scale + codes) and a step (the block of all 4 rows), as constants for C2. */
    private static final int CODES = 32, BLOCK = 4 + CODES, STEP = ROWS * BLOCK;

    private Q8_0Interleaved() {
        super("Q8_0", F16, CODES);
    }


    @Override
    void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot) {
        long to = step + (long) BLOCK * slot;
        dst.set(FLOAT, to, fileScale(src, from));
        MemorySegment.copy(src, fileCodes(from), dst, to + 4, CODES);
    }

    @Override
    void decodeBlock(MemorySegment src, long step, int slot, float[] dst, int o) {
        long p = step + (long) BLOCK * slot;
        Q8_0Format.decodeBlock(src, p + 4, src.get(FLOAT, p), dst, o);
    }

    @Override
    public void dequantizeLanes(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) {
            dequantizeLanesScalar(src, group, slot, dst, dstOffset, n, scratch);
            return;
        }
        int half = n / 2;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b + BLOCK * slot;
            FloatVector d = FloatVector.broadcast(F512, src.get(FLOAT, p));
            ((FloatVector) ByteVector.fromMemorySegment(B128, src, p + 4, LE).convertShape(B2F, F512, 0)).mul(d).intoArray(dst, dstOffset + 16 * b);
            ((FloatVector) ByteVector.fromMemorySegment(B128, src, p + 20, LE).convertShape(B2F, F512, 0)).mul(d).intoArray(dst, dstOffset + half + 16 * b);
        }
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
            d = FloatVector.broadcast(F512, s.get(FLOAT, p));
            a0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, a0);
            a1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, a1);
            d = FloatVector.broadcast(F512, s.get(FLOAT, p + BLOCK));
            b0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, b0);
            b1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, b1);
            d = FloatVector.broadcast(F512, s.get(FLOAT, p + 2 * BLOCK));
            c0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, c0);
            c1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, c1);
            d = FloatVector.broadcast(F512, s.get(FLOAT, p + 3 * BLOCK));
            d0 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 4, LE).convertShape(B2F, F512, 0)).mul(d).fma(x0, d0);
            d1 = ((FloatVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 20, LE).convertShape(B2F, F512, 0)).mul(d).fma(x1, d1);
        }
        // The reductions written out, as in FourBitInterleaved: a helper taking vectors, if C2 does not inline it, boxes them.
        FloatVector c, h;
        c = a0.add(a1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[0] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = b0.add(b1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[1] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = c0.add(c1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[2] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
        c = d0.add(d1);
        h = ((FloatVector) c.reinterpretShape(F256, 0)).add((FloatVector) c.reinterpretShape(F256, 1));
        out[3] = ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
    }
}
