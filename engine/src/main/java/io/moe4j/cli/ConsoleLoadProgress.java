package io.moe4j.cli;

import io.moe4j.model.LoadProgress;

import java.io.PrintWriter;
import java.nio.file.Path;

/** Loading progress of the commands that load a model, as {@code moe4j: } lines on their error stream. */
final class ConsoleLoadProgress {
    private ConsoleLoadProgress() {
    }

    static LoadProgress of(PrintWriter err, Path model) {
        return LoadProgress.lines(model.getFileName().toString(), line -> {
            err.println("moe4j: " + line);
            err.flush();
        });
    }
}
