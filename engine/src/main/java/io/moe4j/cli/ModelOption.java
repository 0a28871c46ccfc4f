package io.moe4j.cli;

import io.moe4j.model.DefaultModel;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code -m, --model FILE}, shared by the commands that read a model. Without it they use the embedded default
 * model, written on first use, and say so with its path, so that every command can be tried on a fresh clone.
 */
public final class ModelOption {
    @Option(names = {"-m", "--model"}, paramLabel = "FILE",
            description = "The GGUF model file to use (default: the small embedded random-weight MoE, written on first use).")
    Path model;

    /** The model file to open; a missing file or a directory is a clear error here, before any loading starts. */
    public Path resolve(PrintWriter err) {
        if (model == null) {
            Path p = DefaultModel.ensure();
            err.println("moe4j: no -m given: using the embedded default model " + p + ", a small random-weight MoE ("
                    + DefaultModel.DESCRIPTION + "); its text is gibberish by design");
            err.flush();
            return p;
        }
        return checkFile(model);
    }

    /** Checks that {@code path} names a readable regular file. */
    static Path checkFile(Path path) {
        if (Files.isDirectory(path)) throw new IllegalArgumentException(path + " is a directory, not a GGUF model file");
        if (!Files.exists(path)) throw new IllegalArgumentException("model file not found: " + path);
        if (!Files.isReadable(path)) throw new IllegalArgumentException("model file is not readable: " + path);
        return path;
    }

    boolean given() {
        return model != null;
    }
}
