package io.moe4j.batch;

/** A submitted request. */
public interface BatchHandle {
    /**
     * Stops the generation at the next step (or drops it from the queue); its keys and values are freed. The
     * listener then gets {@code onFinish} with {@code StopReason.CANCELLED} (unless it had finished already).
     */
    void cancel();

    boolean isCancelled();
}
