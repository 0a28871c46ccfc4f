package io.moe4j.batch;

/** Every sequence slot is busy and the waiting queue is full: try again later. */
public final class QueueFullException extends RuntimeException {
    public QueueFullException(int queued) {
        super("the server is busy: " + queued + " requests are already waiting; retry later");
    }
}
