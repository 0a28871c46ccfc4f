package io.moe4j.generate;

import io.moe4j.kernels.KvType;

import java.util.List;

/**
 * Options of one generation.
 *
 * @param maxTokens   the most tokens to generate
 * @param sampling    how tokens are chosen
 * @param stop        stop strings (not included in the output)
 * @param contextSize KV cache capacity in tokens; 0 means the model's trained context, capped at 4096 unless
 *                    asked for explicitly
 * @param kvType      storage of keys and values (F16 like llama.cpp by default; F32 for verification)
 */
public record GenerateOptions(int maxTokens, SamplingOptions sampling, List<String> stop, int contextSize,
                              KvType kvType) {

    public GenerateOptions {
        if (maxTokens < 0) throw new IllegalArgumentException("max tokens must be >= 0, got " + maxTokens);
        if (contextSize < 0) throw new IllegalArgumentException("context size must be >= 0, got " + contextSize);
        stop = List.copyOf(stop);
    }

    public static GenerateOptions defaults() {
        return new GenerateOptions(256, SamplingOptions.DEFAULT, List.of(), 0, KvType.F16);
    }

    public static GenerateOptions greedy(int maxTokens) {
        return new GenerateOptions(maxTokens, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
    }

    public GenerateOptions withMaxTokens(int n) {
        return new GenerateOptions(n, sampling, stop, contextSize, kvType);
    }

    public GenerateOptions withSampling(SamplingOptions s) {
        return new GenerateOptions(maxTokens, s, stop, contextSize, kvType);
    }

    public GenerateOptions withStop(List<String> s) {
        return new GenerateOptions(maxTokens, sampling, s, contextSize, kvType);
    }

    public GenerateOptions withContextSize(int n) {
        return new GenerateOptions(maxTokens, sampling, stop, n, kvType);
    }

    public GenerateOptions withKvType(KvType t) {
        return new GenerateOptions(maxTokens, sampling, stop, contextSize, t);
    }
}
