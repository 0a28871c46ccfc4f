package io.moe4j.tools.synth;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector form of the noise gives the floats of the scalar one, for every length, offset and counter. */
class TriangularNoiseTest {

    @Test
    void vectorFillEqualsScalarFill() {
        int[] lengths = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 2048, 2053};
        for (int n : lengths) {
            for (float[] ms : new float[][] {{0, 1}, {1.0f, 0.1f}, {0, 1e-3f}, {-3, 250}}) {
                for (long row : new long[] {0, 1, 5, 1L << 33, -7}) {
                    long x = TriangularNoise.mix(42 ^ (row * 0xD1B54A32D192ED03L));
                    for (int off : new int[] {0, 1, 5}) {
                        float[] s = new float[off + n + 3], v = new float[off + n + 3];
                        TriangularNoise.fillScalar(x, ms[0], ms[1], s, off, n, 0);
                        TriangularNoise.fillVector(x, ms[0], ms[1], v, off, n);
                        for (int i = 0; i < s.length; i++) {
                            assertEquals(Float.floatToRawIntBits(s[i]), Float.floatToRawIntBits(v[i]),
                                    "n " + n + " row " + row + " offset " + off + " element " + i);
                        }
                    }
                }
            }
        }
    }
}
