package io.moe4j.cli;

import io.moe4j.generate.SamplingOptions;
import picocli.CommandLine.Option;

/** The sampling options of the commands that generate ({@code run}, {@code chat}), checked before any work starts. */
public final class SamplingFlags {
    @Option(names = "--temp", paramLabel = "T", defaultValue = "0.8",
            description = "The sampling temperature; 0 picks the most likely token every time (default: ${DEFAULT-VALUE}).")
    float temperature;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "The random seed: the same seed gives the same text (default: ${DEFAULT-VALUE}).")
    long seed;
    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40",
            description = "Sample only among the K most likely tokens; 0 turns it off (default: ${DEFAULT-VALUE}).")
    int topK;
    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95",
            description = "Sample only among the most likely tokens whose probabilities add up to P; 1 turns it off (default: ${DEFAULT-VALUE}).")
    float topP;
    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0.05",
            description = "Drop tokens less likely than P times the most likely one; 0 turns it off (default: ${DEFAULT-VALUE}).")
    float minP;
    @Option(names = "--repeat-penalty", paramLabel = "R", defaultValue = "1.0",
            description = "Divide the logits of tokens seen in the last 64 by R; 1 turns it off (default: ${DEFAULT-VALUE}).")
    float repeatPenalty;
    @Option(names = "--presence-penalty", paramLabel = "X", defaultValue = "0",
            description = "Subtract X from the logit of every token that already occurred, as OpenAI's presence_penalty does; "
                    + "between -2 and 2 (default: ${DEFAULT-VALUE}).")
    float presencePenalty;
    @Option(names = "--frequency-penalty", paramLabel = "X", defaultValue = "0",
            description = "Subtract X times its count so far from the logit of every token, as OpenAI's frequency_penalty does; "
                    + "between -2 and 2 (default: ${DEFAULT-VALUE}).")
    float frequencyPenalty;

    /** The options, or an {@link IllegalArgumentException} naming the flag that is out of range. */
    public SamplingOptions options() {
        check(temperature >= 0 && temperature <= 100, "--temp must be between 0 and 100, got " + temperature);
        check(topK >= 0, "--top-k must be 0 or more, got " + topK);
        check(topP > 0 && topP <= 1, "--top-p must be above 0 and at most 1, got " + topP);
        check(minP >= 0 && minP <= 1, "--min-p must be between 0 and 1, got " + minP);
        check(repeatPenalty > 0, "--repeat-penalty must be above 0, got " + repeatPenalty);
        check(Math.abs(presencePenalty) <= 2, "--presence-penalty must be between -2 and 2, got " + presencePenalty);
        check(Math.abs(frequencyPenalty) <= 2, "--frequency-penalty must be between -2 and 2, got " + frequencyPenalty);
        return new SamplingOptions(temperature, topK, topP, minP, repeatPenalty, 64, presencePenalty, frequencyPenalty, seed);
    }

    static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
