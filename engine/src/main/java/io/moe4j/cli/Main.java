package io.moe4j.cli;

import io.moe4j.Moe4jException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ServiceLoader;

/** {@code bin/moe4j <command>}: the single entry point for users. */
@Command(name = "moe4j", mixinStandardHelpOptions = true, version = "moe4j 0.1.0",
        description = "Mixture-of-Experts LLM inference in Java.",
        subcommands = {RunCommand.class, LogitsCommand.class, TokenizeCommand.class, InspectCommand.class, ServeCommand.class, EvalCommand.class, CompressCommand.class, DecompressCommand.class})
public final class Main {

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code (tests call this directly). */
    public static int execute(String... args) {
        return newCommandLine().execute(args);
    }

    /** The configured command line (UTF-8 output); tests replace its out/err writers to capture them. */
    public static CommandLine newCommandLine() {
        VectorApiCheck.requireVectorApi();
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(new PrintWriter(new OutputStreamWriter(new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8), true));
        cl.setErr(new PrintWriter(new OutputStreamWriter(new FileOutputStream(FileDescriptor.err), StandardCharsets.UTF_8), true));
        // Commands of other modules (weights-tools, bench) register themselves through ServiceLoader.
        for (CliCommandProvider p : ServiceLoader.load(CliCommandProvider.class)) {
            for (Object cmd : p.commands()) cl.addSubcommand(cmd);
        }
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof Moe4jException || ex instanceof IllegalArgumentException) {
                commandLine.getErr().println("error: " + ex.getMessage());
                return 1;
            }
            throw ex;
        });
        return cl;
    }
}
