package io.moe4j.server;

import java.util.List;

/**
 * Turns the text a model generates into the parts of an assistant message: content, reasoning, tool calls. Fed
 * incrementally while streaming; what it returns can be sent to the client at once.
 */
interface ChatOutput {
    sealed interface Part permits Content, Reasoning, Call {
    }

    record Content(String text) implements Part {
    }

    record Reasoning(String text) implements Part {
    }

    /** A complete tool call; {@code arguments} is JSON text. */
    record Call(String name, String arguments) implements Part {
    }

    /** Adds generated text; returns the parts that are complete now. */
    List<Part> accept(String text);

    /** Generation ended: returns whatever is left. */
    List<Part> finish();

    /** Plain text: everything is content. */
    static ChatOutput plain() {
        return new ChatOutput() {
            @Override
            public List<Part> accept(String text) {
                return text.isEmpty() ? List.of() : List.of(new Content(text));
            }

            @Override
            public List<Part> finish() {
                return List.of();
            }
        };
    }
}
