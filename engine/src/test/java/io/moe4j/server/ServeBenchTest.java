package io.moe4j.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The serving bench end to end on a very small synthesized MoE: every stream runs to its token count, both ways. */
class ServeBenchTest {
    @Test
    void measuresEveryStreamCountThroughHttpAndThroughTheModelAlone(@TempDir Path dir) throws Exception {
        Path model = ServeBench.synthesize(new ServeBench.Shape(64, 2, 4, 2, 4, 2, 128), dir);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

        List<ServeBench.Result> results = ServeBench.run(model, 12, new int[] {1, 3}, 1, 0, out);

        String printed = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(2, results.size(), printed);
        assertEquals(1, results.get(0).streams());
        assertEquals(12, results.get(0).tokens(), printed); // the synthesized head never ends a stream early
        assertEquals(3, results.get(1).streams());
        assertEquals(36, results.get(1).tokens(), printed);
        assertTrue(results.stream().allMatch(r -> r.tokensPerSecond() > 0), printed);
        assertTrue(printed.contains(" 3 token(s) per step:"), printed);
        assertTrue(printed.contains("3 streams / 1 stream: "), printed);
        assertTrue(printed.contains("model steps alone"), printed);
    }

    @Test
    void theBestRunOfEachStreamCountCounts() throws Exception {
        int[] calls = new int[1];
        double[] seconds = {3, 2, 1, 4}; // streams 1, 2, 1, 2 in turn
        List<ServeBench.Result> best = ServeBench.best(new int[] {1, 2}, 2, n -> new ServeBench.Result(n, 10, seconds[calls[0]++]));
        assertEquals(4, calls[0]);
        assertEquals(1.0, best.get(0).seconds());
        assertEquals(2.0, best.get(1).seconds());
    }
}
