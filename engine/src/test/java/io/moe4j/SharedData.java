package io.moe4j;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates {@code ../shared} (golden llama.cpp data and small real models) from the project root. In a user's
 * clone it is absent: tests that need it are skipped with a message that says so.
 */
public final class SharedData {
    private SharedData() {
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

    public static Path goldenModel(String caseId) {
        return golden().resolve("models").resolve(caseId + ".gguf");
    }

    public static Path models() {
        return root().resolve("models");
    }
}
