package io.moe4j.kernels.quant;

import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The quantizers on hand-worked blocks (the rounding rules that make them byte-identical to llama.cpp: C's
 * roundf and truncation, first-wins ties, log2f rounding, f16/bf16 NaN handling) and on random data (round trip
 * error per type). Byte identity with llama-quantize itself is checked on real files in the engine's
 * GoldenQuantTest.
 */
class QuantizerTest {

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }

    private static float[] block(int n, float... head) {
        float[] x = new float[n];
        System.arraycopy(head, 0, x, 0, head.length);
        return x;
    }

    @Test
    void q8_0RoundsHalvesAwayFromZero() {
        // 127 makes d = 1 exactly, so q = roundf(x): C's roundf, not Math.round (which gives 2 and -2 for +-2.5)
        float[] x = block(32, 127f, 2.5f, -2.5f, 0.49999997f, -0.5f, 126.5f, -126.5f, -0.4f, 1e-3f);
        byte[] q = BlockFormats.quantize(GgmlType.Q8_0, x, 0, 32);
        assertEquals("003c", hex(Arrays.copyOf(q, 2))); // f16 1.0
        assertArrayEquals(new byte[] {127, 3, -3, 0, -1, 127, -127, 0, 0}, Arrays.copyOfRange(q, 2, 11));
    }

    @Test
    void q8_0AllZeroBlock() {
        assertEquals("0000" + "00".repeat(32), hex(BlockFormats.quantize(GgmlType.Q8_0, new float[32], 0, 32)));
    }

    @Test
    void q4_0ScalesByTheSignedMaximumAndTruncates() {
        // max magnitude -8 gives d = -8/-8 = 1: nibble = min(15, (int)(x + 8.5)); 7.6 clamps to 15
        float[] x = block(32, -8f, 7f, 7.6f, -0.5f, -0.51f, 0.49f, 0.5f, 3.2f);
        x[16] = 6.5f;   // high nibble of byte 0: (int)15.0 = 15
        x[17] = -7.5f;  // high nibble of byte 1: (int)1.0 = 1
        byte[] q = BlockFormats.quantize(GgmlType.Q4_0, x, 0, 32);
        assertEquals("003c", hex(Arrays.copyOf(q, 2)));
        int[] low = {0, 15, 15, 8, 7, 8, 9, 11};
        for (int j = 0; j < low.length; j++) assertEquals(low[j], q[2 + j] & 15, "element " + j);
        assertEquals(15, (q[2] & 0xFF) >> 4);
        assertEquals(1, (q[3] & 0xFF) >> 4);
        assertEquals(8, (q[4] & 0xFF) >> 4); // zeros sit on nibble 8
        // the largest magnitude positive: d = -max/8 is negative, and max itself maps to nibble 0
        byte[] p = BlockFormats.quantize(GgmlType.Q4_0, block(32, 8f, -8f), 0, 32);
        assertEquals("00bc", hex(Arrays.copyOf(p, 2))); // f16 -1.0
        assertEquals(0, p[2] & 15);
        assertEquals(15, p[3] & 15); // -8 / -1 = 8, 16.5 truncates to 16, clamps to 15
    }

    @Test
    void q4_0AllZeroBlockHasNegativeZeroScale() {
        // C computes d = 0.0f / -8 = -0.0f and stores f16 0x8000; every nibble is (int)(0 + 8.5) = 8
        assertEquals("0080" + "88".repeat(16), hex(BlockFormats.quantize(GgmlType.Q4_0, new float[32], 0, 32)));
    }

    @Test
    void mxfp4PicksTheNearestValueFirstCodeWinningTies() {
        // max|x| = 6: e = floor(log2 6) - 2 + 127 = 127, so the scale is 2^-1 and the values are 0,.5,1,1.5,2,3,4,6
        float[] x = block(32, 6f, -6f, 0f, -0f, 0.25f, 0.75f, 5f, -5f, 2.4f, -0.1f);
        byte[] q = BlockFormats.quantize(GgmlType.MXFP4, x, 0, 32);
        assertEquals(127, q[0] & 0xFF);
        int[] codes = {7, 15, 0, 0, 0, 1, 6, 14, 4, 0};
        for (int j = 0; j < codes.length; j++) assertEquals(codes[j], q[1 + j] & 15, "element " + j);
        assertEquals(0, (q[1] & 0xFF) >> 4); // element 16, a zero: code 0, not the -0 code 8
    }

    @Test
    void mxfp4ExponentFollowsFloatLog2Rounding() {
        // Just below 8, log2 is 3 - 8.6e-8, which rounds to the float 3.0: C's floorf(log2f(.)) gives 3, not 2.
        byte[] q = BlockFormats.quantize(GgmlType.MXFP4, block(32, Math.nextDown(8f)), 0, 32);
        assertEquals(128, q[0] & 0xFF);
        assertEquals(6, q[1] & 15); // 7.9999995 is nearest to 8 = code 6 (doubled 8) at scale 2^0
        assertEquals(128, BlockFormats.quantize(GgmlType.MXFP4, block(32, 8f), 0, 32)[0] & 0xFF);
        assertEquals(127, BlockFormats.quantize(GgmlType.MXFP4, block(32, 7.5f), 0, 32)[0] & 0xFF);
        assertEquals(0, BlockFormats.quantize(GgmlType.MXFP4, new float[32], 0, 32)[0]);
    }

    @Test
    void halfAndBfloatConversionsFollowGgml() {
        float[] x = {1f, 65520f, -0f, Float.NaN, Float.intBitsToFloat(0xFF800001), 0x1p-24f, 0x1p-25f,
                Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), Float.intBitsToFloat(0x3F808001),
                Float.intBitsToFloat(0x7F7FFFFF), Float.intBitsToFloat(0x7F800001)};
        byte[] h = BlockFormats.quantize(GgmlType.F16, x, 0, x.length);
        // 65520 rounds to infinity; NaNs become 0x7e00 with their sign; 2^-25 ties to even (zero)
        assertEquals("003c" + "007c" + "0080" + "007e" + "00fe" + "0100" + "0000" + "043c" + "0c3c" + "043c"
                + "007c" + "007e", hex(h));
        byte[] b = BlockFormats.quantize(GgmlType.BF16, x, 0, x.length);
        // ties to even on the low 16 bits; NaN keeps its top bits and is forced quiet; max float rounds to inf
        assertEquals("803f" + "8047" + "0080" + "c07f" + "c0ff" + "8033" + "0033" + "803f" + "823f" + "813f"
                + "807f" + "c07f", hex(b));
    }

    /** Relative RMS error of the round trip on Gaussian weights, and the round trip of the decoded values. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    void roundTripErrorIsWhatTheTypeAllows(GgmlType type) {
        Random r = new Random(3 + type.id);
        int n = 64 * 256;
        float[] x = TestData.gaussian(r, n + 10, 0.02);
        byte[] q = BlockFormats.quantize(type, x, 10, n);
        assertEquals(type.bytesFor(n), q.length);
        float[] y = new float[n];
        BlockFormats.of(type).dequantize(MemorySegment.ofArray(q), 0, y, 0, n);
        double e = 0, s = 0;
        for (int i = 0; i < n; i++) {
            e += Math.pow(y[i] - x[10 + i], 2);
            s += Math.pow(x[10 + i], 2);
        }
        double rel = Math.sqrt(e / s);
        double bound = switch (type) {
            case F32 -> 0;
            case F16 -> 3e-4;
            case BF16 -> 2.5e-3;
            case Q8_0 -> 6e-3;
            case Q6_K -> 0.019;
            case Q4_K -> 0.075;
            case Q4_0 -> 0.09;
            case MXFP4 -> 0.12;
            default -> throw new AssertionError(type);
        };
        assertTrue(rel <= bound, type + ": relative RMS error " + rel + " > " + bound);
        // the quantizer writes at the given offset and nothing else
        byte[] dst = new byte[q.length + 9];
        BlockFormats.quantizer(type).quantize(x, 10, MemorySegment.ofArray(dst), 5, n);
        assertArrayEquals(q, Arrays.copyOfRange(dst, 5, 5 + q.length));
        assertEquals(0, dst[4]);
        assertEquals(0, dst[5 + q.length]);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q6_K"})
    void kQuantsEncodeZerosAndConstantsSensibly(GgmlType type) {
        float[] y = new float[256];
        byte[] zeros = BlockFormats.quantize(type, new float[256], 0, 256);
        BlockFormats.of(type).dequantize(MemorySegment.ofArray(zeros), 0, y, 0, 256);
        for (float v : y) assertEquals(0f, v, 0f); // d = 0: zeros (of either sign)
        float[] c = new float[256];
        Arrays.fill(c, -0.37f);
        BlockFormats.of(type).dequantize(MemorySegment.ofArray(BlockFormats.quantize(type, c, 0, 256)), 0, y, 0, 256);
        for (float v : y) assertEquals(-0.37f, v, 0.37f * 0.02, Arrays.toString(Arrays.copyOf(y, 8)));
    }
}
