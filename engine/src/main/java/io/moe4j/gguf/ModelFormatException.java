package io.moe4j.gguf;

import io.moe4j.Moe4jException;

/** A model file that cannot be used: malformed, truncated, or not what the architecture needs. */
public class ModelFormatException extends Moe4jException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
