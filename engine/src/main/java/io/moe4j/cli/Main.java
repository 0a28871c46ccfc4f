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
        subcommands = {RunCommand.class, ChatCommand.class, ServeCommand.class, InspectCommand.class, TokenizeCommand.class,
                LogitsCommand.class, EvalCommand.class, CompressCommand.class, DecompressCommand.class})
public final class Main {

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code (tests call this directly). */
    public static int execute(String... args) {
        return newCommandLine().execute(args);
    }

    /** What a command line printed on stdout and stderr, and its exit code. */
    public record Captured(int exit, String out, String err) {
    }

    /** Runs a command line in this JVM with its output captured (tests, and programs that embed the CLI). */
    public static Captured capture(String... args) {
        CommandLine cl = newCommandLine();
        java.io.StringWriter out = new java.io.StringWriter(), err = new java.io.StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Captured(code, out.toString(), err.toString());
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
        cl.setParameterExceptionHandler(Main::badCommandLine);
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            String message = userError(ex);
            if (message == null) throw ex;
            commandLine.getErr().println("error: " + message);
            commandLine.getErr().flush();
            return 1;
        });
        return cl;
    }

    /**
     * A mistyped command line gets the one line that matters and where to look, not the whole usage: the error,
     * picocli's "did you mean" suggestions for an unknown option or command, and the --help hint. Exit code 2.
     */
    static int badCommandLine(CommandLine.ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        PrintWriter err = cmd.getErr();
        err.println("error: " + ex.getMessage());
        CommandLine.UnmatchedArgumentException.printSuggestions(ex, err);
        err.println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help' for the options.");
        err.flush();
        return cmd.getCommandSpec().exitCodeOnInvalidInput();
    }

    /** The message for a failure that is the user's input or environment rather than a bug; null for a bug. */
    static String userError(Exception ex) {
        if (ex instanceof Moe4jException || ex instanceof IllegalArgumentException) return ex.getMessage();
        if (ex instanceof java.io.UncheckedIOException u) return u.getCause().getMessage();
        if (ex instanceof java.io.IOException) return ex.getMessage() == null ? ex.toString() : ex.getMessage();
        return null;
    }
}
