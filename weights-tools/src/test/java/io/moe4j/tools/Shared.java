package io.moe4j.tools;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates {@code ../shared} (golden llama.cpp data and small real models), as the engine's tests do. Where it is
 * absent (a user's clone) the tests that need it are skipped with a message that says so.
 */
public final class Shared {
    private Shared() {
    }

    public static Path root() {
        String configured = System.getProperty("moe4j.shared");
        Path p = configured != null ? Path.of(configured) : Path.of("..", "shared");
        if (!Files.isDirectory(p.resolve("golden"))) {
            String msg = "SKIPPED: golden data not found at " + p.toAbsolutePath().normalize()
                    + " (../shared next to the project root); CI always has it";
            System.out.println(msg);
            Assumptions.abort(msg);
        }
        return p;
    }

    public static Path golden() {
        return root().resolve("golden");
    }

    public static Path goldenModel(String id) {
        return golden().resolve("models").resolve(id + ".gguf");
    }

    public static Path models() {
        return root().resolve("models");
    }
}
