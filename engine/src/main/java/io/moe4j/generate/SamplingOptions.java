package io.moe4j.generate;

/**
 * How the next token is picked from the logits. Temperature 0 (or below) means greedy: the highest logit wins and
 * the lowest id wins exact ties. Filters run in llama.cpp's default order: penalties, top-k, top-p, min-p,
 * temperature, then a seeded draw.
 *
 * @param repeatPenalty    &gt; 1 discourages tokens seen in the last {@code repeatLastN} (1 = off)
 * @param presencePenalty  subtracted once from every token seen (OpenAI semantics; 0 = off)
 * @param frequencyPenalty subtracted per occurrence (0 = off)
 * @param topK             keep the k most likely (0 = off)
 * @param topP             keep the smallest set with this much probability (1 = off)
 * @param minP             drop tokens below minP × the top probability (0 = off)
 * @param seed             same seed, same choices
 */
public record SamplingOptions(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                              float presencePenalty, float frequencyPenalty, long seed) {

    public static final SamplingOptions GREEDY = new SamplingOptions(0f, 0, 1f, 0f, 1f, 64, 0f, 0f, 0L);
    public static final SamplingOptions DEFAULT = new SamplingOptions(0.8f, 40, 0.95f, 0.05f, 1f, 64, 0f, 0f, 0L);

    public SamplingOptions {
        if (Float.isNaN(temperature) || temperature > 100) throw new IllegalArgumentException("temperature must be between 0 and 100, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top_k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
        if (!(repeatPenalty > 0)) throw new IllegalArgumentException("repeat penalty must be > 0, got " + repeatPenalty);
        if (repeatLastN < 0) throw new IllegalArgumentException("repeat_last_n must be >= 0, got " + repeatLastN);
        if (!(Math.abs(presencePenalty) <= 2)) throw new IllegalArgumentException("presence_penalty must be in [-2, 2], got " + presencePenalty);
        if (!(Math.abs(frequencyPenalty) <= 2)) throw new IllegalArgumentException("frequency_penalty must be in [-2, 2], got " + frequencyPenalty);
    }

    public boolean greedy() {
        return temperature <= 0;
    }

    public SamplingOptions withTemperature(float t) {
        return new SamplingOptions(t, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed);
    }

    public SamplingOptions withTopK(int k) {
        return new SamplingOptions(temperature, k, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed);
    }

    public SamplingOptions withTopP(float p) {
        return new SamplingOptions(temperature, topK, p, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed);
    }

    public SamplingOptions withMinP(float p) {
        return new SamplingOptions(temperature, topK, topP, p, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed);
    }

    public SamplingOptions withPenalties(float repeat, int lastN, float presence, float frequency) {
        return new SamplingOptions(temperature, topK, topP, minP, repeat, lastN, presence, frequency, seed);
    }

    public SamplingOptions withSeed(long s) {
        return new SamplingOptions(temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, s);
    }
}
