package io.moe4j.tools.synth;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A tensor's random values are generated row by row (the vector and scalar generators: TriangularNoiseTest). */
class RandomRowsTest {

    @Test
    void fillIsRowByRow() {
        RandomRows rr = new RandomRows(7, 3, 40, 0, 1);
        float[] all = new float[3 * 40], one = new float[40];
        rr.fill(10, 3, all);
        for (int r = 0; r < 3; r++) {
            rr.row(10 + r, one, 0);
            for (int i = 0; i < 40; i++) assertEquals(one[i], all[r * 40 + i], 0f);
        }
    }
}
