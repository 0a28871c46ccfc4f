package io.moe4j.tools.synth;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector form of the row generator gives the floats of the scalar one, for every row length and offset. */
class RandomRowsTest {

    @Test
    void vectorRowsEqualScalarRows() {
        int[] lengths = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 2048, 2053};
        for (int cols : lengths) {
            for (double[] ms : new double[][] {{0, 1}, {1.0, 0.1}, {0, 1e-3}, {-3, 250}}) {
                RandomRows rr = new RandomRows(42, cols, cols, ms[0], ms[1]);
                for (long row : new long[] {0, 1, 5, 1L << 33, -7}) {
                    for (int off : new int[] {0, 1, 5}) {
                        float[] s = new float[off + cols + 3], v = new float[off + cols + 3];
                        rr.rowScalar(row, s, off);
                        rr.rowVector(row, v, off);
                        for (int i = 0; i < s.length; i++) {
                            assertEquals(Float.floatToRawIntBits(s[i]), Float.floatToRawIntBits(v[i]),
                                    "cols " + cols + " row " + row + " offset " + off + " element " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void fillIsRowByRow() {
        RandomRows rr = new RandomRows(7, 3, 40, 0, 1);
        float[] all = new float[3 * 40], one = new float[40];
        rr.fill(10, 3, all);
        for (int r = 0; r < 3; r++) {
            rr.rowScalar(10 + r, one, 0);
            for (int i = 0; i < 40; i++) assertEquals(one[i], all[r * 40 + i], 0f);
        }
    }
}
