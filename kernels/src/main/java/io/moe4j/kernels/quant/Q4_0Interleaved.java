package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;

import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

/** Q4_0 in the layout of {@link ScaledInterleaved}: each block a float scale and the file's 16 code bytes. */
final class Q4_0Interleaved extends ScaledInterleaved {
    static final Q4_0Interleaved INSTANCE = new Q4_0Interleaved();

    /** Code bytes per block; a block here (float scale + codes) and a step (the block of all 4 rows), as constants for C2. */
    private static final int CODES = 16, BLOCK = 4 + CODES, STEP = ROWS * BLOCK;

    private Q4_0Interleaved() {
        super("Q4_0", CODES);
    }

    private static final FloatVector LEVELS = FloatVector.fromArray(F512,
            new float[]{-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7}, 0);

    @Override
    void decodeBlock(MemorySegment src, long codes, float d, float[] dst, int o) {
        Q4_0Format.decodeBlock(src, codes, d, dst, o);
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
            IntVector t = LEVELS.mul(src.get(FLOAT, p)).reinterpretAsInts();
            IntVector i = (IntVector) ByteVector.fromMemorySegment(B128, src, p + 4, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            i.and(15).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + 16 * b);
            i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + half + 16 * b);
        }
    }

    /**
     * Each row keeps the two 16-lane accumulators of {@link Q4_0Format#dotWide} (lanes i % 32 of its weights) and
     * its final reduction, so its result is the same float; the weights come from the same per-block table
     * (LEVELS times d) by a permute.
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
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            IntVector t, i;
            t = LEVELS.mul(s.get(FLOAT, p)).reinterpretAsInts();
            i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 4, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            a0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, a0);
            a1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(x1, a1);
            t = LEVELS.mul(s.get(FLOAT, p + BLOCK)).reinterpretAsInts();
            i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + BLOCK + 4, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            b0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, b0);
            b1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(x1, b1);
            t = LEVELS.mul(s.get(FLOAT, p + 2 * BLOCK)).reinterpretAsInts();
            i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 2 * BLOCK + 4, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            c0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, c0);
            c1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(x1, c1);
            t = LEVELS.mul(s.get(FLOAT, p + 3 * BLOCK)).reinterpretAsInts();
            i = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 3 * BLOCK + 4, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            d0 = ((FloatVector) i.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, d0);
            d1 = ((FloatVector) i.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(x1, d1);
        }
        // The reductions written out: a helper taking vectors, if C2 does not inline it, boxes them (measured 5x slower).
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
