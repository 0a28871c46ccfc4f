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
 * The {@link BlockInterleaved} layout of the types stored here as signed byte codes with float scales (Q8_0 as in
 * the file; Q6_K decoded from its 6-bit codes): a step is a sequence of sub-steps of 32 weights, each holding the
 * 4 rows' sub-blocks in turn, a sub-block being the float scale of weights 0-15, for types that scale each 16 weights
 * separately the float scale of weights 16-31, then the 32 codes. Weight = code * scale, one float multiplication,
 * as the row-major kernels compute it.
 *
 * <p>Bytes per 32 weights: Q8_0 36 (file 34), Q6_K 40 (file 26.25). Q6_K's extra bytes buy a kernel with no
 * unpacking: the row-major Q6_K kernel spends its time assembling 6-bit codes from two bit fields (~14 shuffles and
 * logic operations per 32 weights), this one does a widening load per 16.
 *
 * <p>Each subclass writes {@link #dot4} with its offsets as constants: C2 compiles this class's kernel once for both
 * types, and with the offsets read from fields the Q8_0 kernel ran at half speed (L2-resident, 1 core: 24.7 GB/s
 * against 48 with constants). They broadcast the scales explicitly ({@code FloatVector.broadcast}): Q8_0's pair
 * kernel written with {@code mul(float)} ran at 10 GB/s instead of 34.
 */
abstract class Int8Interleaved extends BlockInterleaved {
    /** Bytes of a row's sub-block; where the scale of weights 16-31 and where the codes start within it. */
    final int sub, hiScale, codes;

    /** {@code scales}: 1 (one scale per 32 weights) or 2 (one per 16). */
    Int8Interleaved(String name, int weights, int srcBlock, int scales) {
        super(name, weights, srcBlock, weights / QK * (4 * scales + QK));
        if (scales != 1 && scales != 2) throw new IllegalArgumentException(scales + " scales per 32 weights");
        this.codes = 4 * scales;
        this.sub = codes + QK;
        this.hiScale = 4 * (scales - 1);
    }

    /** Where row {@code slot}'s sub-block {@code j} (weights 32j.. of the block) of the step at {@code step} starts. */
    final long subBlock(long step, int j, int slot) {
        return step + (long) ROWS * sub * j + (long) sub * slot;
    }

    /** Writes one sub-block: scales {@code lo} (weights 0-15) and {@code hi} (16-31, ignored with one scale). */
    final void putScales(MemorySegment dst, long at, float lo, float hi) {
        dst.set(LE_FLOAT, at, lo);
        if (hiScale != 0) dst.set(LE_FLOAT, at + hiScale, hi);
    }

    @Override
    final void decodeBlock(MemorySegment src, long step, int slot, float[] dst, int o) {
        for (int j = 0; j < weights / QK; j++) {
            long p = subBlock(step, j, slot);
            float lo = src.get(LE_FLOAT, p), hi = src.get(LE_FLOAT, p + hiScale);
            for (int i = 0; i < QK; i++) dst[o + QK * j + i] = src.get(ValueLayout.JAVA_BYTE, p + codes + i) * (i < QK / 2 ? lo : hi);
        }
    }

    @Override
    public final void dequantizeLanes(MemorySegment src, long group, int slot, float[] dst, int dstOffset, int n, KernelScratch scratch) {
        check(n);
        if (!QuantSupport.WIDE) {
            dequantizeLanesScalar(src, group, slot, dst, dstOffset, n, scratch);
            return;
        }
        int half = n / 2;
        for (int j = 0, nj = n / QK; j < nj; j++) {
            long p = subBlock(group, j, slot);
            ((FloatVector) ByteVector.fromMemorySegment(B128, src, p + codes, LE).convertShape(B2F, F512, 0))
                    .mul(FloatVector.broadcast(F512, src.get(LE_FLOAT, p))).intoArray(dst, dstOffset + 16 * j);
            ((FloatVector) ByteVector.fromMemorySegment(B128, src, p + codes + 16, LE).convertShape(B2F, F512, 0))
                    .mul(FloatVector.broadcast(F512, src.get(LE_FLOAT, p + hiScale))).intoArray(dst, dstOffset + half + 16 * j);
        }
    }
}
