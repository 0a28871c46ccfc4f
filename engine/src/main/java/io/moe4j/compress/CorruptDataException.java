package io.moe4j.compress;

import io.moe4j.Moe4jException;

/** A compressed file that is damaged, truncated, or not a moe4j compressed file at all. */
public final class CorruptDataException extends Moe4jException {
    public CorruptDataException(String message) {
        super(message);
    }
}
