package io.moe4j.examples;

import io.moe4j.SharedData;
import io.moe4j.generate.GenerationResult;
import io.moe4j.model.DefaultModel;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class GenerateExampleTest {

    /** Runs the example's generation with standard output captured; returns the result and what it printed. */
    private record Run(GenerationResult result, String printed) {
    }

    private static Run run(Path model, String prompt, int maxNewTokens) {
        GenerationResult[] result = new GenerationResult[1];
        String printed = printedBy(() -> result[0] = GenerateExample.generate(model, prompt, maxNewTokens));
        return new Run(result[0], printed);
    }

    /** What {@code action} writes to standard output. */
    private static String printedBy(Runnable action) {
        PrintStream original = System.out;
        var captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            action.run();
            System.out.flush();
        } finally {
            System.setOut(original);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }

    private static void assertProducedText(Run run, int maxNewTokens) {
        GenerationResult r = run.result();
        assertTrue(r.tokenIds().length > 0, "no token generated");
        assertTrue(r.tokenIds().length <= maxNewTokens, "more than " + maxNewTokens + " new tokens: " + r.tokenIds().length);
        assertFalse(r.text().isBlank(), "blank text: '" + r.text() + "'");
        assertEquals(r.text(), run.printed(), "the streamed pieces differ from the result's text");
        assertEquals(r.tokenIds().length, r.timings().generatedTokens());
    }

    @Test
    void generatesWithTheEmbeddedDefaultModel() {
        assertProducedText(run(DefaultModel.ensure(), "Once upon a time", 16), 16);
    }

    @Test
    void generatesEnglishWithStories260K() {
        Path model = SharedData.models().resolve("stories260K.gguf");
        assumeTrue(Files.isRegularFile(model), "SKIPPED: " + model + " is missing");
        Run run = run(model, "Once upon a time", 48);
        assertProducedText(run, 48);
        // stories260K was trained on TinyStories: a continuation of this prompt has common English words in it.
        assertTrue(run.result().text().matches("(?s).*\\b(the|a|was|and|to|she|he)\\b.*"),
                "no English in: " + run.result().text());
    }

    @Test
    void mainPrintsTextAndTimings() {
        String out = printedBy(() -> GenerateExample.main(new String[0]));
        assertTrue(out.contains("tokens/s"), "no timings in: " + out);
    }
}
