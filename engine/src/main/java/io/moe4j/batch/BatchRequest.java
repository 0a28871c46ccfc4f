package io.moe4j.batch;

import java.util.List;
import java.util.Objects;

/**
 * One generation for the {@link BatchScheduler}: continue {@code prompt} with at most {@code maxTokens} tokens.
 *
 * @param prompt        prompt tokens (BOS included if the model wants one); at least one
 * @param maxTokens     the most tokens to generate
 * @param stop          stop strings, not included in the output
 * @param sampler       picks each token (one instance for this request only)
 * @param topLogprobs   -1: no log-probabilities; 0..20: report the chosen token's log-probability and this many
 *                      alternatives
 * @param renderSpecial control tokens the model emits appear as their text (e.g. {@code <tool_call>}), for
 *                      callers that parse them; otherwise they render as nothing
 */
public record BatchRequest(int[] prompt, int maxTokens, List<String> stop, TokenSampler sampler, int topLogprobs,
                           boolean renderSpecial) {
    public BatchRequest {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(sampler, "sampler");
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens)");
        if (maxTokens < 0) throw new IllegalArgumentException("max tokens must be >= 0, got " + maxTokens);
        if (topLogprobs < -1 || topLogprobs > 20) throw new IllegalArgumentException("top logprobs must be in [-1, 20], got " + topLogprobs);
        prompt = prompt.clone();
        stop = List.copyOf(stop);
    }
}
