package io.moe4j.cli;

import io.moe4j.generate.SamplingOptions;
import picocli.CommandLine.Option;

import java.util.concurrent.ThreadLocalRandom;

/** The sampling options of {@code chat}, in llama.cpp's names and defaults. */
final class SamplingFlags {
    @Option(names = "--temp", paramLabel = "T", defaultValue = "0.8",
            description = "The sampling temperature; 0 always picks the most likely token (greedy). Default: ${DEFAULT-VALUE}.")
    float temperature;
    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40",
            description = "Samples only from the K most likely tokens; 0 turns this off. Default: ${DEFAULT-VALUE}.")
    int topK;
    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95",
            description = "Samples only from the most likely tokens that together have probability P; 1 turns this off. Default: ${DEFAULT-VALUE}.")
    float topP;
    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0.05",
            description = "Drops tokens less likely than P times the most likely one; 0 turns this off. Default: ${DEFAULT-VALUE}.")
    float minP;
    @Option(names = "--repeat-penalty", paramLabel = "R", defaultValue = "1.0",
            description = "Divides the scores of tokens seen in the last 64 by R (above 1 discourages repetition); 1 turns this off. Default: ${DEFAULT-VALUE}.")
    float repeatPenalty;
    @Option(names = "--presence-penalty", paramLabel = "X", defaultValue = "0",
            description = "Lowers the score of every token already seen by X (OpenAI's presence_penalty, -2 to 2); 0 turns this off. Default: ${DEFAULT-VALUE}.")
    float presencePenalty;
    @Option(names = "--frequency-penalty", paramLabel = "X", defaultValue = "0",
            description = "Lowers the score of a token by X for each time it was seen (OpenAI's frequency_penalty, -2 to 2); 0 turns this off. Default: ${DEFAULT-VALUE}.")
    float frequencyPenalty;
    @Option(names = "--seed", paramLabel = "S",
            description = "The random seed: the same seed and input give the same answers. Default: a new one for each run.")
    Long seed;

    /** The options as the sampler takes them; a bad value is an {@link IllegalArgumentException} naming the flag. */
    SamplingOptions toOptions() {
        if (!(temperature >= 0)) throw new IllegalArgumentException("--temp must be 0 or more, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("--top-k must be 0 or more, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("--top-p must be above 0 and at most 1, got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("--min-p must be between 0 and 1, got " + minP);
        if (!(repeatPenalty > 0)) throw new IllegalArgumentException("--repeat-penalty must be above 0, got " + repeatPenalty);
        if (!(Math.abs(presencePenalty) <= 2)) throw new IllegalArgumentException("--presence-penalty must be between -2 and 2, got " + presencePenalty);
        if (!(Math.abs(frequencyPenalty) <= 2)) throw new IllegalArgumentException("--frequency-penalty must be between -2 and 2, got " + frequencyPenalty);
        long s = seed != null ? seed : ThreadLocalRandom.current().nextLong();
        return new SamplingOptions(temperature, topK, topP, minP, repeatPenalty, 64, presencePenalty, frequencyPenalty, s);
    }
}
