package io.moe4j.kernels.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.moe4j.kernels.quant.QuantSupport.B64;
import static io.moe4j.kernels.quant.QuantSupport.F256;
import static io.moe4j.kernels.quant.QuantSupport.B128;
import static io.moe4j.kernels.quant.QuantSupport.F512;
import static io.moe4j.kernels.quant.QuantSupport.I256;
import static io.moe4j.kernels.quant.QuantSupport.I512;
import static io.moe4j.kernels.quant.QuantSupport.LE;
import static io.moe4j.kernels.quant.QuantSupport.f16;
import static io.moe4j.kernels.quant.QuantSupport.nearestInt;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

/**
 * Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32, 144 bytes: f16 d, f16 dmin, 12 bytes packing a 6-bit
 * scale sc[j] and a 6-bit min m[j] per sub-block, then 128 bytes of nibbles. Weight = d*sc[j]*q - dmin*m[j].
 * The nibbles come in 4 chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and 2c+1 in its high.
 */
final class Q4_KFormat extends KernelBase {
    static final Q4_KFormat INSTANCE = new Q4_KFormat();

    private Q4_KFormat() {
        super(io.moe4j.kernels.GgmlType.Q4_K);
    }
    static final int QK = 256, BLOCK_BYTES = 144;
    private static final int SCALES = 4, QS = 16;

    private static int u8(MemorySegment s, long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xFF;
    }

    /**
     * ggml's get_scale_min_k4: sub-blocks 0..3 keep scale and min in the low 6 bits of bytes j and j+4;
     * sub-blocks 4..7 keep their low 4 bits in byte j+4 and their top 2 bits in the spare top bits of bytes
     * j-4 (scale) and j (min). Returns scale | min << 8.
     */
    static int scaleMin(MemorySegment s, long scales, int j) {
        return scaleMin(s.get(QuantSupport.LE_LONG, scales), s.get(QuantSupport.LE_INT, scales + 8), j);
    }

    /**
     * The same from the 12 scale bytes read as a little-endian long (bytes 0..7) and int (bytes 8..11): a few
     * shifts, small enough to be inlined into the dot loop (a call there would spill every vector register).
     */
    static int scaleMin(long b0to7, int b8to11, int j) {
        if (j < 4) return (int) (b0to7 >>> 8 * j) & 63 | ((int) (b0to7 >>> 8 * j + 32) & 63) << 8;
        int k = j - 4;
        int sc = (b8to11 >>> 8 * k & 0xF) | ((int) (b0to7 >>> 8 * k + 6) & 3) << 4;
        int m = (b8to11 >>> 8 * k + 4 & 0xF) | ((int) (b0to7 >>> 8 * j + 6) & 3) << 4;
        return sc | m << 8;
    }

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_K");
        for (int b = 0; b < n / QK; b++) {
            long p = offset + (long) b * BLOCK_BYTES;
            float d = f16(src, p), dmin = f16(src, p + 2);
            int o = dstOffset + b * QK;
            for (int c = 0; c < 4; c++) {
                int sm0 = scaleMin(src, p + SCALES, 2 * c), sm1 = scaleMin(src, p + SCALES, 2 * c + 1);
                float d0 = d * (sm0 & 0xFF), m0 = dmin * (sm0 >>> 8);
                float d1 = d * (sm1 & 0xFF), m1 = dmin * (sm1 >>> 8);
                for (int l = 0; l < 32; l++) {
                    int q = u8(src, p + QS + 32 * c + l);
                    dst[o + 64 * c + l] = d0 * (q & 0xF) - m0;
                    dst[o + 64 * c + 32 + l] = d1 * (q >>> 4) - m1;
                }
            }
        }
    }

    /** Fills sm[j] = d * scale_j and sm[8 + j] = dmin * min_j of the super-block at {@code p}. */
    private static void scalesMins(MemorySegment s, long p, float[] sm) {
        float d = f16(s, p), dmin = f16(s, p + 2);
        // The 12 scale bytes (and 4 bytes of codes after them, unused) as 16 bytes; lane j of 8 int lanes is
        // sub-block j. Sub-blocks 0-3: scale = b[j] & 63, min = b[j+4] & 63; 4-7: scale = (b[j+4] & 15) | (b[j-4] >> 6) << 4,
        // min = (b[j+4] >> 4) | (b[j] >> 6) << 4 (get_scale_min_k4, eight at once).
        ByteVector v = ByteVector.fromMemorySegment(B128, s, p + SCALES, LE);
        IntVector a = (IntVector) v.rearrange(PICK_A).convertShape(ZERO_EXTEND_B2I, I256, 0);
        IntVector hiA = (IntVector) v.rearrange(PICK_B).convertShape(ZERO_EXTEND_B2I, I256, 0);
        IntVector c = (IntVector) v.rearrange(PICK_C).convertShape(ZERO_EXTEND_B2I, I256, 0);
        IntVector hiC = (IntVector) v.rearrange(PICK_D).convertShape(ZERO_EXTEND_B2I, I256, 0);
        IntVector sc = a.and(63).blend(a.and(15).or(hiA.lanewise(LSHR, 6).lanewise(LSHL, 4)), UPPER);
        IntVector m = c.and(63).blend(c.lanewise(LSHR, 4).or(hiC.lanewise(LSHR, 6).lanewise(LSHL, 4)), UPPER);
        ((FloatVector) sc.convert(I2F, 0)).mul(d).intoArray(sm, 0);
        ((FloatVector) m.convert(I2F, 0)).mul(dmin).intoArray(sm, 8);
    }

    /*
     * The scales and mins of dotWide in one 512-bit pass: the 12 scale bytes (and 52 bytes after them, unused) as 16
     * ints, of which lanes 0, 1, 2 are bytes 0-3, 4-7, 8-11. Lane j < 8 forms scale j, lane 8 + j min j, each as
     * (X >>> s) & mask | (Y >>> s') & 0x30 with X, Y one of the three ints (one permute each, variable shifts).
     */
    private static final VectorShuffle<Integer> WIDE_X = VectorShuffle.fromValues(I512,
            0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2),
            WIDE_Y = VectorShuffle.fromValues(I512, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    private static final IntVector WIDE_XS = IntVector.fromArray(I512, new int[]{
            0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 4, 12, 20, 28}, 0),
            WIDE_XM = IntVector.fromArray(I512, new int[]{63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15}, 0),
            WIDE_YS = IntVector.fromArray(I512, new int[]{0, 0, 0, 0, 2, 10, 18, 26, 0, 0, 0, 0, 2, 10, 18, 26}, 0),
            WIDE_YM = IntVector.fromArray(I512, new int[]{0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30}, 0);
    private static final VectorMask<Float> UPPER16 = VectorMask.fromLong(F512, 0xFF00L);

    private static final VectorShuffle<Byte> PICK_A = VectorShuffle.fromValues(B128, 0, 1, 2, 3, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0),
            PICK_B = VectorShuffle.fromValues(B128, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0),
            PICK_C = VectorShuffle.fromValues(B128, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0),
            PICK_D = VectorShuffle.fromValues(B128, 0, 0, 0, 0, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0);
    private static final VectorMask<Integer> UPPER = VectorMask.fromValues(I256, false, false, false, false, true, true, true, true);

    @Override
    float dotVector(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK)); // sliced here, so that escape analysis removes it
        float[] sm = scratch.f;
        FloatVector a0 = FloatVector.zero(F256), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            scalesMins(s, p, sm);
            // Sub-block j: 32 weights in the low (j even) or high (j odd) nibbles of the 32 bytes of chunk j / 2.
            for (int j = 0; j < 8; j++) {
                int xo = xOffset + QK * b + 32 * j, sh = 4 * (j & 1);
                long c = p + QS + 32 * (j >> 1);
                FloatVector sc = FloatVector.broadcast(F256, sm[j]), mn = FloatVector.broadcast(F256, sm[8 + j]);
                a0 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 0, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).fma(FloatVector.fromArray(F256, x, xo), a0);
                a1 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 8, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).fma(FloatVector.fromArray(F256, x, xo + 8), a1);
                a2 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 16, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).fma(FloatVector.fromArray(F256, x, xo + 16), a2);
                a3 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 24, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).fma(FloatVector.fromArray(F256, x, xo + 24), a3);
            }
        }
        FloatVector c = a0.add(a2).add(a1.add(a3));
        return ((c.lane(0) + c.lane(1)) + (c.lane(2) + c.lane(3))) + ((c.lane(4) + c.lane(5)) + (c.lane(6) + c.lane(7)));
    }

    @Override
    float dotWide(MemorySegment src, long offset, float[] x, int xOffset, int n, KernelScratch scratch) {
        MemorySegment s = src;
        FloatVector z0 = FloatVector.zero(F512), z1 = z0;
        // Chunk c of a super-block: 32 bytes at QS + 32c, sub-block 2c in the low nibbles, 2c+1 in the high ones. Each
        // sub-block's 16 possible weights d*sc*q - dmin*m (q = 0..15, formed as dequantize forms them) make a table; a
        // permute looks the nibbles up in it, in place of widening, converting, scaling and offsetting every weight.
        // The 4 chunks are written out: C2 compiled a nested 4-iteration loop with pre- and post-loops and their
        // range-check arithmetic around every super-block.
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = offset + (long) BLOCK_BYTES * b;
            int xo = xOffset + QK * b;
            // d * scale (lanes 0-7) and -(dmin * min) (lanes 8-15) of the 8 sub-blocks, kept in a register and broadcast
            // by permutes. Stored to scratch and read back as scalars instead, the kernel ran at 9.9 GB/s per core
            // L2-resident against 12 (the 4-byte reads of a 64-byte store seem not to be forwarded, so they wait for it
            // to retire, i.e. for the previous super-block's FMA chain). q * ds + (-m) is the same float as dequantize's ds * q - m.
            IntVector v = IntVector.fromMemorySegment(I512, s, p + SCALES, LE);
            IntVector lo = v.rearrange(WIDE_X).lanewise(LSHR, WIDE_XS).and(WIDE_XM);
            IntVector hi = v.rearrange(WIDE_Y).lanewise(LSHR, WIDE_YS).and(WIDE_YM);
            FloatVector dm = FloatVector.broadcast(F512, f16(s, p)).blend(-f16(s, p + 2), UPPER16);
            FloatVector r = ((FloatVector) lo.or(hi).convert(I2F, 0)).mul(dm);
            IntVector i0, i1, t;
            i0 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 16, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            i1 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 32, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE0)).add(r.rearrange(LANE8)).reinterpretAsInts();
            z0 = ((FloatVector) i0.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 0), z0);
            z1 = ((FloatVector) i1.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 16), z1);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE1)).add(r.rearrange(LANE9)).reinterpretAsInts();
            z0 = ((FloatVector) i0.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 32), z0);
            z1 = ((FloatVector) i1.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 48), z1);
            i0 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 48, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            i1 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 64, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE2)).add(r.rearrange(LANE10)).reinterpretAsInts();
            z0 = ((FloatVector) i0.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 64), z0);
            z1 = ((FloatVector) i1.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 80), z1);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE3)).add(r.rearrange(LANE11)).reinterpretAsInts();
            z0 = ((FloatVector) i0.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 96), z0);
            z1 = ((FloatVector) i1.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 112), z1);
            i0 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 80, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            i1 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 96, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE4)).add(r.rearrange(LANE12)).reinterpretAsInts();
            z0 = ((FloatVector) i0.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 128), z0);
            z1 = ((FloatVector) i1.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 144), z1);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE5)).add(r.rearrange(LANE13)).reinterpretAsInts();
            z0 = ((FloatVector) i0.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 160), z0);
            z1 = ((FloatVector) i1.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 176), z1);
            i0 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 112, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            i1 = (IntVector) ByteVector.fromMemorySegment(B128, s, p + 128, LE).convertShape(ZERO_EXTEND_B2I, I512, 0);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE6)).add(r.rearrange(LANE14)).reinterpretAsInts();
            z0 = ((FloatVector) i0.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 192), z0);
            z1 = ((FloatVector) i1.and(15).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 208), z1);
            t = (IntVector) IOTA16.mul(r.rearrange(LANE7)).add(r.rearrange(LANE15)).reinterpretAsInts();
            z0 = ((FloatVector) i0.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 224), z0);
            z1 = ((FloatVector) i1.lanewise(LSHR, 4).selectFrom(t).reinterpretAsFloats()).fma(FloatVector.fromArray(F512, x, xo + 240), z1);
        }
        FloatVector c = z0.add(z1);
        FloatVector h = (FloatVector) c.reinterpretShape(F256, 0);
        h = h.add((FloatVector) c.reinterpretShape(F256, 1));
        return ((h.lane(0) + h.lane(1)) + (h.lane(2) + h.lane(3))) + ((h.lane(4) + h.lane(5)) + (h.lane(6) + h.lane(7)));
    }

    /** Lane j of a 16-lane vector in every lane. */
    private static final VectorShuffle<Float> LANE0 = VectorShuffle.fromValues(F512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            LANE1 = VectorShuffle.fromValues(F512, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            LANE2 = VectorShuffle.fromValues(F512, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2),
            LANE3 = VectorShuffle.fromValues(F512, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3),
            LANE4 = VectorShuffle.fromValues(F512, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4),
            LANE5 = VectorShuffle.fromValues(F512, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5),
            LANE6 = VectorShuffle.fromValues(F512, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
            LANE7 = VectorShuffle.fromValues(F512, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7),
            LANE8 = VectorShuffle.fromValues(F512, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8),
            LANE9 = VectorShuffle.fromValues(F512, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9),
            LANE10 = VectorShuffle.fromValues(F512, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10),
            LANE11 = VectorShuffle.fromValues(F512, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11),
            LANE12 = VectorShuffle.fromValues(F512, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12),
            LANE13 = VectorShuffle.fromValues(F512, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13),
            LANE14 = VectorShuffle.fromValues(F512, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14),
            LANE15 = VectorShuffle.fromValues(F512, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15);

    /** 0, 1, ..., 15: the nibble values, as floats. */
    static final FloatVector IOTA16 = FloatVector.fromArray(F512,
            new float[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 0);

    @Override
    void dequantizeLanesVector(MemorySegment src, long offset, float[] dst, int dstOffset, int n, int q, KernelScratch scratch) {
        MemorySegment s = src.asSlice(offset, (long) BLOCK_BYTES * (n / QK));
        float[] sm = scratch.f;
        for (int b = 0, nb = n / QK; b < nb; b++) {
            long p = (long) BLOCK_BYTES * b;
            scalesMins(s, p, sm);
            for (int j = 0; j < 8; j++) {
                int o = dstOffset + 128 * b + 16 * j, sh = 4 * (j & 1);
                long c = p + QS + 32 * (j >> 1);
                FloatVector sc = FloatVector.broadcast(F256, sm[j]), mn = FloatVector.broadcast(F256, sm[8 + j]);
                ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 0, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).intoArray(dst, o);
                ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 8, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).intoArray(dst, o + 8);
                ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 16, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).intoArray(dst, o + q);
                ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B64, s, c + 24, LE).convertShape(ZERO_EXTEND_B2I, I256, 0)).lanewise(LSHR, sh).and(15).convert(I2F, 0)).mul(sc).sub(mn).intoArray(dst, o + q + 8);
            }
        }
    }

    /**
     * llama.cpp's quantize_row_q4_K_ref: each sub-block gets an affine fit (scale, min) from make_qkx2_quants
     * weighted by rms + |x|; the 8 scales and 8 mins are then quantized to 6 bits against d = max scale / 63
     * and dmin = max min / 63, and the weights re-quantized with the stored (rounded) scales.
     */
    @Override
    public void quantize(float[] src, int srcOffset, MemorySegment dst, long dstOffset, int n) {
        QuantSupport.checkBlocks(n, QK, "Q4_K");
        int[] levels = new int[QK], aux = new int[32];
        float[] weights = new float[32], scales = new float[8], mins = new float[8], theMin = new float[1];
        byte[] packed = new byte[12]; // every byte is assigned before it is or-ed into, per block
        for (int b = 0; b < n / QK; b++) {
            int xo = srcOffset + b * QK;
            long p = dstOffset + (long) b * BLOCK_BYTES;
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++) {
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) sumX2 += src[xo + 32 * j + l] * src[xo + 32 * j + l];
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(src[xo + 32 * j + l]);
                scales[j] = makeQkx2Quants(32, 15, src, xo + 32 * j, weights, levels, 32 * j, theMin, aux, -1f, 0.1f, 20);
                mins[j] = theMin[0];
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++) {
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF); // C: uint8_t, then MIN(63, ..)
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                if (j < 4) {
                    packed[j] = (byte) ls;
                    packed[j + 4] = (byte) lm;
                } else {
                    packed[j + 4] = (byte) ((ls & 0xF) | (lm & 0xF) << 4);
                    packed[j - 4] |= (byte) ((ls >>> 4) << 6);
                    packed[j] |= (byte) ((lm >>> 4) << 6);
                }
            }
            QuantSupport.putF16(dst, p, maxScale / 63f);
            QuantSupport.putF16(dst, p + 2, maxMin / 63f);
            MemorySegment.copy(packed, 0, dst, ValueLayout.JAVA_BYTE, p + SCALES, 12);

            float d = f16(dst, p), dmin = f16(dst, p + 2);
            for (int j = 0; j < 8; j++) {
                int sm = scaleMin(dst, p + SCALES, j);
                float dj = d * (sm & 0xFF);
                if (dj == 0) continue; // keeps the levels of the fit, as C does
                float mj = dmin * (sm >>> 8);
                for (int ii = 0; ii < 32; ii++) {
                    int l = nearestInt((src[xo + 32 * j + ii] + mj) / dj);
                    levels[32 * j + ii] = Math.max(0, Math.min(15, l));
                }
            }
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int q = levels[64 * c + l] | levels[64 * c + 32 + l] << 4;
                    dst.set(ValueLayout.JAVA_BYTE, p + QS + 32 * c + l, (byte) q);
                }
            }
        }
    }

    /**
     * ggml's make_qkx2_quants: fits x ~ scale * L + min (min <= 0, L in 0..nmax) minimizing the weighted squared
     * error: starts from the min/max range, then tries nstep+1 candidate scales (nmax + rmin + rdelta * is over
     * the range), solving the weighted least squares for scale and min at each candidate's levels. Leaves the
     * best levels in L[lOff..], stores -min in theMin[0] and returns the scale. Float operations in C's order.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] w, int[] L, int lOff, float[] theMin,
                                int[] aux, float rmin, float rdelta, int nstep) {
        float min = x[xo], max = x[xo];
        float sumW = w[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float v = x[xo + i];
            if (v < min) min = v;
            if (v > max) max = v;
            sumW += w[i];
            sumX += w[i] * v;
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lOff + i] = 0;
            theMin[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
            L[lOff + i] = l;
            float diff = scale * l + min - x[xo + i];
            bestError += w[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                aux[i] = l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * aux[i] + thisMin - x[xo + i];
                    curError += w[i] * (diff * diff);
                }
                if (curError < bestError) {
                    System.arraycopy(aux, 0, L, lOff, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }
}
