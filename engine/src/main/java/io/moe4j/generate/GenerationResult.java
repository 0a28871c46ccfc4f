package io.moe4j.generate;

/** The outcome of a non-streaming generation (also returned at the end of a streaming one). */
public record GenerationResult(String text, int[] tokenIds, StopReason stopReason, Timings timings) {
}
