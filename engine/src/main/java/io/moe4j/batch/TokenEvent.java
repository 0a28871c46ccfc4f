package io.moe4j.batch;

/**
 * One generated token as the scheduler streams it. {@code text} is what the token completes (possibly empty while
 * a UTF-8 character or a possible stop string is held back). The text flushed at the end of a generation comes
 * as an event with {@code id == -1}.
 *
 * @param logprob     natural log-probability of the token under the model (NaN unless asked for)
 * @param topIds      the most likely tokens at this position, most likely first (empty unless asked for)
 * @param topLogprobs their log-probabilities
 */
public record TokenEvent(int id, String text, int index, float logprob, int[] topIds, float[] topLogprobs) {
}
