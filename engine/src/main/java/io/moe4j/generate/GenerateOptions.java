package io.moe4j.generate;

import io.moe4j.kernels.KvType;

import java.util.List;

/**
 * Options of one generation.
 *
 * @param maxTokens    the most tokens to generate
 * @param sampling     how tokens are chosen
 * @param stop         stop strings (not included in the output)
 * @param contextSize  KV cache capacity in tokens; 0 means the model's trained context, capped at 4096 unless
 *                     asked for explicitly
 * @param kvType       storage of keys and values (F16 like llama.cpp by default; F32 for verification)
 * @param contextShift what happens when the context is full: false, generation stops
 *                     ({@link StopReason#CONTEXT_FULL}); true, the oldest half of the tokens after the first
 *                     {@code keep} is dropped and generation goes on ({@link Session#shift}), as llama.cpp's
 *                     {@code --context-shift} does; a prompt that does not fit after the tokens held is made room
 *                     for in the same way
 * @param keep         with {@code contextShift}, the tokens at the start of the session that a shift keeps, not
 *                     counting the BOS token that opens it, which is kept as well (llama.cpp's {@code --keep N}
 *                     likewise adds the BOS token); must be less than the context size
 */
public record GenerateOptions(int maxTokens, SamplingOptions sampling, List<String> stop, int contextSize,
                              KvType kvType, boolean contextShift, int keep) {

    public GenerateOptions {
        if (maxTokens < 0) throw new IllegalArgumentException("max tokens must be >= 0, got " + maxTokens);
        if (contextSize < 0) throw new IllegalArgumentException("context size must be >= 0, got " + contextSize);
        if (keep < 0) throw new IllegalArgumentException("keep must be >= 0, got " + keep);
        if (contextSize > 0 && keep >= contextSize) {
            throw new IllegalArgumentException("keep " + keep + " must be less than the context size " + contextSize);
        }
        stop = List.copyOf(stop);
    }

    /** Without context shift: a full context ends generation. */
    public GenerateOptions(int maxTokens, SamplingOptions sampling, List<String> stop, int contextSize, KvType kvType) {
        this(maxTokens, sampling, stop, contextSize, kvType, false, 0);
    }

    public static GenerateOptions defaults() {
        return new GenerateOptions(256, SamplingOptions.DEFAULT, List.of(), 0, KvType.F16);
    }

    public static GenerateOptions greedy(int maxTokens) {
        return new GenerateOptions(maxTokens, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
    }

    public GenerateOptions withMaxTokens(int n) {
        return new GenerateOptions(n, sampling, stop, contextSize, kvType, contextShift, keep);
    }

    public GenerateOptions withSampling(SamplingOptions s) {
        return new GenerateOptions(maxTokens, s, stop, contextSize, kvType, contextShift, keep);
    }

    public GenerateOptions withStop(List<String> s) {
        return new GenerateOptions(maxTokens, sampling, s, contextSize, kvType, contextShift, keep);
    }

    public GenerateOptions withContextSize(int n) {
        return new GenerateOptions(maxTokens, sampling, stop, n, kvType, contextShift, keep);
    }

    public GenerateOptions withKvType(KvType t) {
        return new GenerateOptions(maxTokens, sampling, stop, contextSize, t, contextShift, keep);
    }

    /** With or without context shift ({@code contextShift}). */
    public GenerateOptions withContextShift(boolean on) {
        return new GenerateOptions(maxTokens, sampling, stop, contextSize, kvType, on, keep);
    }

    /** The tokens a context shift keeps after the BOS token ({@code keep}). */
    public GenerateOptions withKeep(int n) {
        return new GenerateOptions(maxTokens, sampling, stop, contextSize, kvType, contextShift, n);
    }
}
