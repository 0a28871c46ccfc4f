package io.moe4j.cli;

import io.moe4j.generate.GenerateOptions;
import picocli.CommandLine.Option;

/** {@code --context-shift} and {@code --keep N}, shared by the commands that generate into one context (run, chat). */
public final class ContextShiftOption {
    @Option(names = "--context-shift",
            description = "When the context is full, drop the oldest half of the tokens after the first --keep and go on, "
                    + "as llama.cpp's --context-shift does (default: stop, with reason length).")
    boolean enabled;
    @Option(names = "--keep", paramLabel = "N", defaultValue = "0",
            description = "With --context-shift: the tokens at the start of the context that a shift keeps, besides the BOS "
                    + "token, which is always kept (llama.cpp's --keep) (default: ${DEFAULT-VALUE}).")
    int keep;

    /** The flags on their own, before the model is loaded. */
    void check() {
        SamplingFlags.check(keep >= 0, "--keep must be 0 or more, got " + keep);
        SamplingFlags.check(keep == 0 || enabled, "--keep " + keep + " has no effect without --context-shift");
    }

    /** {@code options} with these flags, for a context of {@code contextSize} tokens. */
    GenerateOptions apply(GenerateOptions options, int contextSize) {
        check();
        SamplingFlags.check(keep < contextSize, "--keep " + keep + " must be less than the context size of " + contextSize
                + " tokens (-c/--ctx)");
        return options.withContextShift(enabled).withKeep(keep);
    }
}
