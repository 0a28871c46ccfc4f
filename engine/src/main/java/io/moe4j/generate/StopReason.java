package io.moe4j.generate;

/** Why generation ended. */
public enum StopReason {
    /** the model produced an end-of-generation token */
    END_OF_GENERATION,
    /** a stop string appeared in the text */
    STOP_STRING,
    /** the requested number of tokens was generated */
    MAX_TOKENS,
    /** the context (KV cache) is full */
    CONTEXT_FULL,
    /** the caller cancelled (e.g. a client disconnected) */
    CANCELLED
}
