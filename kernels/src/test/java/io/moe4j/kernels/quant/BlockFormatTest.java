package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Decoding and dot products of every weight type against the independent {@link ReferenceDecoder}. */
class BlockFormatTest {

    /** Pads the encoded bytes with {@code pad} leading junk bytes: kernels must honour the offset, aligned or not. */
    private static MemorySegment padded(byte[] b, int pad) {
        byte[] out = new byte[pad + b.length];
        for (int i = 0; i < pad; i++) out[i] = (byte) (0x5A + i);
        System.arraycopy(b, 0, out, pad, b.length);
        return MemorySegment.ofArray(out);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    void dequantizeEqualsReferenceDecodeBitForBit(GgmlType type) {
        Random r = new Random(42 + type.id);
        for (int nBlocks : new int[] {1, 3, 40}) {
            for (byte[] b : new byte[][] {TestData.rawBytes(type, nBlocks, r), TestData.saneBlocks(type, nBlocks, r)}) {
                float[] expected = ReferenceDecoder.decode(type, b);
                float[] got = new float[expected.length + 5];
                BlockFormats.of(type).dequantize(padded(b, 7), 7, got, 3, expected.length);
                for (int i = 0; i < expected.length; i++) {
                    if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(got[3 + i])) {
                        fail(type + " element " + i + " of " + expected.length + ": expected " + expected[i] + ", got " + got[3 + i]);
                    }
                }
                assertEquals(0f, got[0]);
                assertEquals(0f, got[got.length - 2]);
            }
        }
    }

    /**
     * The dot kernels (public entry, scalar and SIMD paths) against the double-precision dot of the decoded
     * weights. Bound: 1e-4 of sum|x| * max|w|, far above float rounding over these lengths, far below the
     * error of any mis-decoded group (that is of the order of the dot itself).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    void dotEqualsDotOfDecodedWeights(GgmlType type) {
        Random r = new Random(7 + type.id);
        int[] counts = type.isQuantized() ? new int[] {1, 2, 7, 33} : new int[] {1, 7, 8, 15, 16, 17, 31, 100, 1001};
        BlockFormat f = BlockFormats.of(type);
        for (int count : counts) {
            for (int rep = 0; rep < 3; rep++) {
                int n = count * type.blockSize;
                byte[] b = rep == 2 && type.isQuantized()
                        ? BlockFormats.quantize(type, TestData.gaussian(r, n, 0.05), 0, n) // realistic blocks
                        : TestData.saneBlocks(type, count, r);
                float[] w = ReferenceDecoder.decode(type, b);
                float[] x = new float[n + 9];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                int xo = 5;
                double exact = 0, mag = 0, wmax = 0;
                for (int i = 0; i < n; i++) {
                    exact += (double) w[i] * x[xo + i];
                    mag += Math.abs(x[xo + i]);
                    wmax = Math.max(wmax, Math.abs(w[i]));
                }
                double tol = 1e-4 * mag * wmax + Float.MIN_NORMAL;
                MemorySegment seg = padded(b, 3);
                check(type + " dot n=" + n, exact, tol, f.dot(seg, 3, x, xo, n));
                check(type + " scalar dot n=" + n, exact, tol, TestData.scalarDot(type).dot(seg, 3, x, xo, n));
                check(type + " vector dot n=" + n, exact, tol, TestData.vectorDot(type).dot(seg, 3, x, xo, n));
            }
        }
    }

    private static void check(String what, double exact, double tol, float got) {
        assertTrue(Math.abs(got - exact) <= tol, what + ": expected " + exact + " +- " + tol + ", got " + got);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    void emptyDotIsZero(GgmlType type) {
        MemorySegment none = MemorySegment.ofArray(new byte[0]);
        assertEquals(0f, BlockFormats.of(type).dot(none, 0, new float[0], 0, 0));
        assertEquals(0f, TestData.vectorDot(type).dot(none, 0, new float[0], 0, 0));
    }

    /**
     * The SIMD half-to-float bit trick against Float.float16ToFloat for all 65536 halves, bit for bit except that
     * a NaN only has to stay a NaN (Java sets the quiet bit, the kernel keeps the half's payload as it is).
     */
    @Test
    void f16VectorConversionIsExactForEveryHalf() {
        byte[] all = new byte[2 << 16];
        for (int h = 0; h < 1 << 16; h++) {
            all[2 * h] = (byte) h;
            all[2 * h + 1] = (byte) (h >> 8);
        }
        MemorySegment seg = MemorySegment.ofArray(all);
        float[] lanes = new float[8];
        for (int h = 0; h < 1 << 16; h += 8) {
            F16Format.toFloats(seg, 2L * h).intoArray(lanes, 0);
            for (int k = 0; k < 8; k++) {
                int want = Float.floatToIntBits(Float.float16ToFloat((short) (h + k)));
                assertEquals(want, Float.floatToIntBits(lanes[k]), "half 0x" + Integer.toHexString(h + k));
            }
        }
    }

    @Test
    void partialBlocksAreRejected() {
        MemorySegment seg = MemorySegment.ofArray(new byte[1024]);
        assertThrows(IllegalArgumentException.class, () -> BlockFormats.of(GgmlType.Q8_0).dequantize(seg, 0, new float[64], 0, 16));
        assertThrows(IllegalArgumentException.class, () -> BlockFormats.of(GgmlType.Q4_K).dot(seg, 0, new float[512], 0, 288));
        assertThrows(IllegalArgumentException.class, () -> BlockFormats.quantize(GgmlType.MXFP4, new float[40], 0, 40));
    }

    @Test
    void unsupportedTypesSayWhatIsSupported() {
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, () -> BlockFormats.of(GgmlType.Q5_K));
        assertTrue(e.getMessage().contains("Q5_K") && e.getMessage().contains("MXFP4"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> BlockFormats.quantizer(GgmlType.IQ2_XS));
    }
}
