package io.moe4j.batch;

import io.moe4j.generate.StopReason;

/**
 * How a generation ended.
 *
 * @param promptTokens     tokens of the prompt
 * @param cachedTokens     of those, tokens whose keys and values were reused from the prompt cache
 * @param completionTokens tokens generated (an end-of-generation token is not counted)
 * @param queueNanos       time spent waiting for a free sequence slot
 * @param promptNanos      from admission to the first sampled token
 * @param decodeNanos      from the first sampled token to the end
 */
public record BatchResult(StopReason stopReason, int promptTokens, int cachedTokens, int completionTokens,
                          long queueNanos, long promptNanos, long decodeNanos) {
}
