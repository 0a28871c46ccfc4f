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
 * The 4-bit types whose block is a scale d and 32 codes, weight = value[code] * d (Q4_0: values -8..7; MXFP4: the
 * doubled E2M1 values of {@link MXFP4Format#KVALUES}), in the layout of {@link ScaledInterleaved}. One kernel serves
 * both: it looks the codes up in the block's table of 16 weights (the values times d), so the types differ in the
 * table only.
 *
 * <p>A step (80 bytes) is the 4 rows' code bytes woven into one 512-bit vector, then their 4 float scales: int lane k
 * (bytes 4k..4k+3) holds code byte k of rows 0, 1, 2, 3 (byte k of a file block holds weight k in its low nibble and
 * k + 16 in its high one). Row r's weights k and k + 16 are then nibbles 2r and 2r + 1 of lane k: two shifts and
 * masks of the one vector, where a byte-per-row layout needs a widening load (a shuffle) per row. The kernel is bound
 * by its shuffles (the widening loads and the table permutes), so this takes 4 of its 12 per step away.
 *
 * <p>Measured (JMH {@code matMul}, tokens=1, 2 threads, GB/s of file bytes): MXFP4 row-major 20.7,
 * interleaved with the file's exponent byte and a widening load per row 22.1, with float scales 29.9, woven: see
 * docs/performance.md.
 */
final class FourBitInterleaved extends ScaledInterleaved {
    static final FourBitInterleaved Q4_0 = new FourBitInterleaved("Q4_0", F16, Q4_0Format.LEVELS);

    /** MXFP4's E8M0 exponent byte e: 2^(e-128), ggml's GGML_E8M0_TO_FP32_HALF (its values are stored doubled). */
    private static final FileScale E8M0 = new FileScale() {
        public int bytes() {
            return 1;
        }

        public float read(MemorySegment src, long at) {
            return MXFP4Format.scale(src.get(ValueLayout.JAVA_BYTE, at) & 0xFF);
        }
    };

    static final FourBitInterleaved MXFP4 = new FourBitInterleaved("MXFP4", E8M0, MXFP4Format.LEVELS);

    /** Code bytes per block, a step's bytes, and where its scales start, as constants for C2. */
    private static final int CODES = 16, STEP = ROWS * (4 + CODES), SCALES = ROWS * CODES;

    /**
     * The value of each code, as a vector (the row-major kernel's own table, which the kernels scale per block) and
     * as an array for the scalar decode.
     */
    private final FloatVector levels;
    private final float[] values;

    private FourBitInterleaved(String name, FileScale scale, FloatVector levels) {
        super(name, scale, CODES);
        this.levels = levels;
        this.values = levels.toArray();
    }

    @Override
    void packBlock(MemorySegment src, long from, MemorySegment dst, long step, int slot) {
        dst.set(LE_FLOAT, step + SCALES + 4L * slot, fileScale(src, from));
        long codes = fileCodes(from);
        for (int k = 0; k < CODES; k++) dst.set(ValueLayout.JAVA_BYTE, step + 4L * k + slot, src.get(ValueLayout.JAVA_BYTE, codes + k));
    }

    /** As the row-major types decode: value times d, one float multiplication per weight. */
    @Override
    void decodeBlock(MemorySegment src, long step, int slot, float[] dst, int o) {
        float d = src.get(LE_FLOAT, step + SCALES + 4L * slot);
        for (int k = 0; k < QK / 2; k++) {
            int q = src.get(ValueLayout.JAVA_BYTE, step + 4L * k + slot) & 0xFF;
            dst[o + k] = values[q & 0x0F] * d;
            dst[o + k + QK / 2] = values[q >>> 4] * d;
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
        FloatVector levels = this.levels;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b;
            IntVector t = levels.mul(src.get(LE_FLOAT, p + SCALES + 4L * slot)).reinterpretAsInts();
            IntVector v = IntVector.fromMemorySegment(I512, src, p, LE);
            v.lanewise(LSHR, shift).and(15).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + 16 * b);
            v.lanewise(LSHR, shift + 4).and(15).selectFrom(t).reinterpretAsFloats().intoArray(dst, dstOffset + half + 16 * b);
        }
    }

    /**
     * Each row keeps the two 16-lane accumulators of {@link Q4_0Format#dotWide} and {@link MXFP4Format#dotWide} (lanes
     * i % 32 of its weights) and their final reduction, so its result is the same float; the weights come from the
     * same per-block table (the values times d) by a permute.
     */
    @Override
    public void dot4(MemorySegment src, long group, float[] x, int xOffset, int n, float[] out, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) {
            dot4Scalar(src, group, x, xOffset, n, out, scratch);
            return;
        }
        MemorySegment s = src;
        FloatVector levels = this.levels;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE), t;
            t = levels.mul(s.get(LE_FLOAT, p + SCALES)).reinterpretAsInts();
            a0 = ((FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, a0);
            a1 = ((FloatVector) v.lanewise(LSHR, 4).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, a1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 4)).reinterpretAsInts();
            b0 = ((FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, b0);
            b1 = ((FloatVector) v.lanewise(LSHR, 12).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, b1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 8)).reinterpretAsInts();
            c0 = ((FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats()).fma(x0, c0);
            c1 = ((FloatVector) v.lanewise(LSHR, 20).and(15).selectFrom(t).reinterpretAsFloats()).fma(x1, c1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 12)).reinterpretAsInts();
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
        FloatVector levels = this.levels;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        FloatVector e0 = a0, e1 = a0, f0 = a0, f1 = a0, g0 = a0, g1 = a0, k0 = a0, k1 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + 16);
            FloatVector y0 = FloatVector.fromArray(F512, x, xo + xStride), y1 = FloatVector.fromArray(F512, x, xo + xStride + 16), w0, w1;
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE), t;
            t = levels.mul(s.get(LE_FLOAT, p + SCALES)).reinterpretAsInts();
            w0 = (FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 4).and(15).selectFrom(t).reinterpretAsFloats();
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x1, a1);
            e0 = w0.fma(y0, e0);
            e1 = w1.fma(y1, e1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 4)).reinterpretAsInts();
            w0 = (FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 12).and(15).selectFrom(t).reinterpretAsFloats();
            b0 = w0.fma(x0, b0);
            b1 = w1.fma(x1, b1);
            f0 = w0.fma(y0, f0);
            f1 = w1.fma(y1, f1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 8)).reinterpretAsInts();
            w0 = (FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats();
            w1 = (FloatVector) v.lanewise(LSHR, 20).and(15).selectFrom(t).reinterpretAsFloats();
            c0 = w0.fma(x0, c0);
            c1 = w1.fma(x1, c1);
            g0 = w0.fma(y0, g0);
            g1 = w1.fma(y1, g1);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 12)).reinterpretAsInts();
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
     * {@link #dot4} for four tokens in two passes over the group, one per half of every block (the low nibbles,
     * weights 0-15, then the high ones, 16-31), as {@link Q8_0Interleaved#dot4Quad} does: one 16-lane accumulator per
     * row and token in each pass, each row's codes looked up once for the four tokens.
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
    private void quadPass(MemorySegment s, long group, int shift, float[] x, int xOffset, int xStride, int nb, float[] l) {
        FloatVector levels = this.levels;
        FloatVector a0 = FloatVector.zero(F512), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int b = 0; b < nb; b++) {
            long p = group + (long) STEP * b;
            int xo = xOffset + QK * b;
            FloatVector x0 = FloatVector.fromArray(F512, x, xo), x1 = FloatVector.fromArray(F512, x, xo + xStride);
            FloatVector x2 = FloatVector.fromArray(F512, x, xo + 2 * xStride), x3 = FloatVector.fromArray(F512, x, xo + 3 * xStride), w;
            IntVector v = IntVector.fromMemorySegment(I512, s, p, LE).lanewise(LSHR, shift), t;
            t = levels.mul(s.get(LE_FLOAT, p + SCALES)).reinterpretAsInts();
            w = (FloatVector) v.and(15).selectFrom(t).reinterpretAsFloats();
            a0 = w.fma(x0, a0);
            a1 = w.fma(x1, a1);
            a2 = w.fma(x2, a2);
            a3 = w.fma(x3, a3);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 4)).reinterpretAsInts();
            w = (FloatVector) v.lanewise(LSHR, 8).and(15).selectFrom(t).reinterpretAsFloats();
            b0 = w.fma(x0, b0);
            b1 = w.fma(x1, b1);
            b2 = w.fma(x2, b2);
            b3 = w.fma(x3, b3);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 8)).reinterpretAsInts();
            w = (FloatVector) v.lanewise(LSHR, 16).and(15).selectFrom(t).reinterpretAsFloats();
            c0 = w.fma(x0, c0);
            c1 = w.fma(x1, c1);
            c2 = w.fma(x2, c2);
            c3 = w.fma(x3, c3);
            t = levels.mul(s.get(LE_FLOAT, p + SCALES + 12)).reinterpretAsInts();
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
