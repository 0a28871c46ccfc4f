package io.moe4j.cli;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@code --chat-template FILE}, shared by the commands that render conversations ({@code chat}, {@code serve}). */
final class ChatTemplateOption {
    @Option(names = "--chat-template", paramLabel = "FILE",
            description = "A file with a Jinja chat template to use instead of the model's own.")
    Path file;

    /** The template's Jinja source, or null when none was given (the model's own is used). */
    String source() {
        if (file == null) return null;
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("no chat template file at " + file);
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the chat template " + file + ": " + e.getMessage());
        }
    }
}
