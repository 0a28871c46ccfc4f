package io.moe4j.cli;

import io.moe4j.Model;
import picocli.CommandLine.Option;

/** {@code -b/--batch N}: how many prompt tokens one forward pass evaluates (llama.cpp's -b). */
public final class BatchOption {
    @Option(names = {"-b", "--batch"}, paramLabel = "N",
            description = "Evaluate prompts in chunks of N tokens: activation memory is bounded by N, whatever the "
                    + "prompt's length (default: 512; serve: 256, so running streams wait less for a new prompt).")
    Integer batch;

    /** Refuses a batch below 1, naming the flag; commands call it before loading the model. */
    public void check() {
        SamplingFlags.check(batch == null || batch >= 1, "--batch must be 1 or more, got " + batch);
    }

    /** Sets the prefill batch of {@code model} when one was given. */
    public void apply(Model model) {
        check();
        if (batch != null) model.setPrefillBatch(batch);
    }
}
