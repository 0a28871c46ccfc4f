package io.moe4j.batch;

/**
 * Receives the events of one generation. Methods are called on the scheduler's thread, in order, and must return
 * quickly (hand the event to another thread; never block on a network).
 * Exactly one of {@link #onFinish} and {@link #onError} ends every request.
 */
public interface BatchListener {
    /** The request got a sequence slot and its prompt evaluation begins. */
    default void onStart(int promptTokens, int cachedTokens) {
    }

    void onToken(TokenEvent token);

    void onFinish(BatchResult result);

    void onError(RuntimeException error);
}
