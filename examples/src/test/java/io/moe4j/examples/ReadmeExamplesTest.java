package io.moe4j.examples;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README shows example programs verbatim: a line {@code <!-- example: PATH -->} followed by a fenced code
 * block. This test holds each block to the file it names, so the README's code is code that compiles and runs.
 */
class ReadmeExamplesTest {
    private static final Path ROOT = Path.of("..");
    private static final Pattern EXAMPLE = Pattern.compile(
            "<!-- example: (\\S+) -->\\R```java\\R(.*?)```", Pattern.DOTALL);

    @Test
    void readmeCodeBlocksAreTheExampleFiles() throws IOException {
        String readme = Files.readString(ROOT.resolve("README.md"));
        Matcher m = EXAMPLE.matcher(readme);
        List<String> checked = new ArrayList<>();
        while (m.find()) {
            Path file = ROOT.resolve(m.group(1));
            assertTrue(Files.isRegularFile(file), "README names an example file that does not exist: " + m.group(1));
            assertEquals(normalized(Files.readString(file)), normalized(m.group(2)),
                    "README's block for " + m.group(1) + " differs from the file: copy the file into the README");
            checked.add(m.group(1));
        }
        assertTrue(checked.contains("examples/src/main/java/io/moe4j/examples/GenerateExample.java"),
                "README does not show GenerateExample.java (found: " + checked + ")");
    }

    private static String normalized(String code) {
        return code.replace("\r\n", "\n").strip() + "\n";
    }
}
