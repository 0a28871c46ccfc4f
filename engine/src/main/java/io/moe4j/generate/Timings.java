package io.moe4j.generate;

/** Wall-clock cost of a generation: prompt evaluation (prefill) and token-by-token decoding. */
public record Timings(int promptTokens, long promptNanos, int generatedTokens, long decodeNanos) {

    public double promptTokensPerSecond() {
        return promptNanos == 0 ? 0 : promptTokens * 1e9 / promptNanos;
    }

    public double decodeTokensPerSecond() {
        return decodeNanos == 0 ? 0 : generatedTokens * 1e9 / decodeNanos;
    }

    @Override
    public String toString() {
        return String.format("prompt: %d tokens, %.1f tokens/s | decode: %d tokens, %.1f tokens/s",
                promptTokens, promptTokensPerSecond(), generatedTokens, decodeTokensPerSecond());
    }
}
