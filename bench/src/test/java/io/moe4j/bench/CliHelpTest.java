package io.moe4j.bench;

import io.moe4j.cli.Main;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every command of {@code bin/moe4j}, those of weights-tools and bench included (this module sees them all):
 * {@code --help} exits 0 and lists every option, and every option and parameter is described by a complete sentence.
 */
class CliHelpTest {
    static Main.Captured run(String... args) {
        return Main.capture(args);
    }

    static List<String> commandNames() {
        return new ArrayList<>(Main.newCommandLine().getSubcommands().keySet());
    }

    @Test
    void everyCommandIsThere() {
        List<String> names = commandNames();
        for (String expected : List.of("run", "chat", "serve", "eval", "compress", "decompress", "inspect", "tokenize", "logits", "synth", "quantize", "convert", "export",
                "upcycle", "bench", "bench-compare", "jmh")) {
            assertTrue(names.contains(expected), "missing command " + expected + " in " + names);
        }
    }

    @Test
    void helpExitsZeroAndListsEveryOption() {
        for (String name : commandNames()) {
            Main.Captured r = run(name, "--help");
            assertEquals(0, r.exit(), name + " --help: " + r.err());
            assertTrue(r.out().contains("Usage: moe4j " + name), name + " --help printed: " + r.out());
            CommandSpec spec = Main.newCommandLine().getSubcommands().get(name).getCommandSpec();
            for (OptionSpec o : spec.options()) {
                if (o.hidden()) continue;
                assertTrue(r.out().contains(o.longestName()), name + " --help does not list " + o.longestName() + ":\n" + r.out());
            }
        }
    }

    @Test
    void everyOptionIsDescribedByACompleteSentence() {
        List<String> bad = new ArrayList<>();
        for (String name : commandNames()) {
            CommandSpec spec = Main.newCommandLine().getSubcommands().get(name).getCommandSpec();
            List<ArgSpec> args = new ArrayList<>(spec.options());
            args.addAll(spec.positionalParameters());
            for (ArgSpec a : args) {
                if (a.hidden()) continue;
                String text = String.join(" ", a.description()).strip();
                String label = a.isOption() ? ((OptionSpec) a).longestName() : a.paramLabel();
                if (!isSentence(text)) bad.add(name + " " + label + ": \"" + text + "\"");
            }
            String summary = spec.usageMessage().description().length == 0 ? "" : spec.usageMessage().description()[0].strip();
            if (!isSentence(summary)) bad.add(name + " (its summary, the first line of its description): \"" + summary + "\"");
        }
        assertTrue(bad.isEmpty(), "not a complete sentence:\n" + String.join("\n", bad));
    }

    /** Starts with a capital letter (or a quoted name) and ends with a full stop. */
    static boolean isSentence(String s) {
        if (s.isEmpty()) return false;
        char first = s.charAt(0);
        boolean starts = Character.isUpperCase(first) || Character.isDigit(first) || first == '\'' || first == '-' || first == '"';
        return starts && (s.endsWith(".") || s.endsWith(".)"));
    }

    @Test
    void aMistypedOptionGetsOneLineAndAHintNotTheWholeUsage() {
        Main.Captured r = run("run", "--temperature", "0");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("error: Unknown option") && r.err().contains("'--temperature'"), r.err());
        assertTrue(r.err().contains("--temp"), "a suggestion: " + r.err());
        assertTrue(r.err().contains("Try 'moe4j run --help'"), r.err());
        assertTrue(!r.err().contains("Usage:") && r.err().lines().count() <= 5, "the whole usage was printed:\n" + r.err());
    }
}
