package io.moe4j.model;

import io.moe4j.Moe4jException;

/** More tokens than the context (KV cache) can hold. */
public class ContextOverflowException extends Moe4jException {
    public ContextOverflowException(int have, int adding, int capacity) {
        super("context overflow: " + have + " tokens in the context + " + adding + " new ones exceed the context size of "
                + capacity + " tokens");
    }
}
