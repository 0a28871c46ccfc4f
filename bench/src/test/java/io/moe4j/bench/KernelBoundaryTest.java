package io.moe4j.bench;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernels module's boundary: outside it, code uses only the public API in the root package
 * {@code io.moe4j.kernels} (Backend, Tensor, Weight, ...), never the CPU implementation in its subpackages
 * {@code cpu}, {@code ops} and {@code quant}, so that the engine, the tools and the benchmarks run on any backend.
 * Scans the main sources of every other module of the build (this one sees none of them on its class path, so the
 * check reads the files): imports, static imports and fully qualified names in code; comments may name the
 * implementation.
 */
class KernelBoundaryTest {
    /** A name in an implementation package of the kernels module. */
    static final Pattern IMPLEMENTATION = Pattern.compile("\\bio\\.moe4j\\.kernels\\.(cpu|ops|quant)\\b");

    static final List<String> REQUIRED_MODULES = List.of("engine", "weights-tools", "bench", "examples");

    @Test
    void noModuleOutsideTheKernelsUsesTheirImplementation() throws IOException {
        Path root = repositoryRoot();
        List<String> modules = modules(root);
        assertTrue(modules.containsAll(REQUIRED_MODULES), "modules of " + root.resolve("pom.xml") + ": " + modules);
        List<String> violations = new ArrayList<>();
        int files = 0;
        for (String module : modules) {
            if (module.equals("kernels")) continue;
            Path src = root.resolve(module).resolve("src/main/java");
            if (!Files.isDirectory(src)) continue;
            try (Stream<Path> s = Files.walk(src)) {
                for (Path f : s.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                    files++;
                    for (String v : violations(Files.readString(f))) violations.add(root.relativize(f) + ":" + v);
                }
            }
        }
        assertTrue(files > 100, "only " + files + " source files under " + root + ": not the repository's modules");
        assertTrue(violations.isEmpty(), violations.size() + " uses of the kernels' implementation packages outside the "
                + "kernels module (use the io.moe4j.kernels API):\n  " + String.join("\n  ", violations));
    }

    @Test
    void findsImportsAndQualifiedNamesButNotComments() {
        String src = """
                package x;
                import io.moe4j.kernels.Backend;
                import io.moe4j.kernels.cpu.Parallel;
                import static io.moe4j.kernels.quant.BlockFormats.quantize;
                import io.moe4j.kernels.ops.*;
                // io.moe4j.kernels.cpu.MatMul in a line comment
                /* io.moe4j.kernels.cpu.MatMul in a block comment,
                   io.moe4j.kernels.ops.Attention on its second line */
                class X {
                    /** {@link io.moe4j.kernels.cpu.CpuBackend} */
                    float a = io.moe4j.kernels.ops.Activations.SWIGLU_ALPHA; // and a comment after code
                    String s = "// not a comment"; int b = io.moe4j.kernels.cpu.Parallel.threads();
                    char c = '"'; Object d = io.moe4j.kernels.quant.SimdStatus.class;
                    String t = \"""
                        io.moe4j.kernels.Backend /* opens no comment in a text block \\\""" nor ends it
                        \""";
                    Object e = io.moe4j.kernels.cpuish.Thing.class; Object f = io.moe4j.kernels.cpu.Parallel.class;
                }
                """;
        assertEquals(List.of(
                "3: import io.moe4j.kernels.cpu.Parallel;",
                "4: import static io.moe4j.kernels.quant.BlockFormats.quantize;",
                "5: import io.moe4j.kernels.ops.*;",
                "11: float a = io.moe4j.kernels.ops.Activations.SWIGLU_ALPHA;",
                "12: String s = \"// not a comment\"; int b = io.moe4j.kernels.cpu.Parallel.threads();",
                "13: char c = '\"'; Object d = io.moe4j.kernels.quant.SimdStatus.class;",
                "17: Object e = io.moe4j.kernels.cpuish.Thing.class; Object f = io.moe4j.kernels.cpu.Parallel.class;"), violations(src));
        assertEquals(List.of(), violations("import io.moe4j.kernels.Backend;\nimport io.moe4j.kernels.Threads;\n"));
    }

    /** "line: code" for each line of {@code source} whose code (comments removed) names an implementation package. */
    static List<String> violations(String source) {
        String[] code = stripComments(source).split("\n", -1);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < code.length; i++) {
            Matcher m = IMPLEMENTATION.matcher(code[i]);
            if (m.find()) out.add((i + 1) + ": " + code[i].strip());
        }
        return out;
    }

    /**
     * {@code source} with every comment replaced by spaces (line breaks kept, so line numbers stay), string and
     * character literals and text blocks left as they are: a comment marker inside a literal is not a comment.
     */
    static String stripComments(String source) {
        StringBuilder b = new StringBuilder(source.length());
        int n = source.length();
        int i = 0;
        while (i < n) {
            char c = source.charAt(i);
            if (source.startsWith("//", i)) {
                while (i < n && source.charAt(i) != '\n') {
                    b.append(' ');
                    i++;
                }
            } else if (source.startsWith("/*", i)) {
                int end = source.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
                for (; i < end; i++) b.append(source.charAt(i) == '\n' ? '\n' : ' ');
            } else if (source.startsWith("\"\"\"", i)) {
                int end = i + 3;
                while (end < n && !source.startsWith("\"\"\"", end)) end += source.charAt(end) == '\\' ? 2 : 1;
                end = Math.min(n, end + 3);
                b.append(source, i, end);
                i = end;
            } else if (c == '"' || c == '\'') {
                int end = i + 1;
                while (end < n && source.charAt(end) != c && source.charAt(end) != '\n') end += source.charAt(end) == '\\' ? 2 : 1;
                end = Math.min(n, end + 1);
                b.append(source, i, end);
                i = end;
            } else {
                b.append(c);
                i++;
            }
        }
        return b.toString();
    }

    /** The modules listed in the root pom's {@code <modules>}. */
    static List<String> modules(Path root) throws IOException {
        Matcher m = Pattern.compile("<module>\\s*([^<\\s]+)\\s*</module>").matcher(Files.readString(root.resolve("pom.xml")));
        List<String> modules = new ArrayList<>();
        while (m.find()) modules.add(m.group(1));
        return modules;
    }

    /** The first folder from the working directory up whose pom.xml lists modules: the repository root. */
    static Path repositoryRoot() {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path pom = d.resolve("pom.xml");
            try {
                if (Files.isRegularFile(pom) && Files.readString(pom).contains("<modules>")) return d;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        throw new IllegalStateException("no pom.xml with <modules> above " + Path.of("").toAbsolutePath());
    }
}
