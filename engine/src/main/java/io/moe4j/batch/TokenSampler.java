package io.moe4j.batch;

import io.moe4j.generate.Sampler;
import io.moe4j.generate.SamplingOptions;

/**
 * Chooses the next token of one sequence from its logits. One instance per sequence (it may keep state, such as
 * its random generator or a grammar position).
 */
@FunctionalInterface
public interface TokenSampler {
    /**
     * @param logits  the model's logits for the next position (may be modified)
     * @param history the tokens the sequence holds so far, prompt included; the first {@code length} entries count
     */
    int sample(float[] logits, int[] history, int length);

    /** The engine's own sampler with these options (the same choices {@code Generator} makes). */
    static TokenSampler of(SamplingOptions options) {
        Sampler s = new Sampler(options);
        return s::sample;
    }
}
