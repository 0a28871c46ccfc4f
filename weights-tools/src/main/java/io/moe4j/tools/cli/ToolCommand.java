package io.moe4j.tools.cli;

import io.moe4j.Moe4jException;
import picocli.CommandLine;

import java.util.concurrent.Callable;

/**
 * What every weights-tools subcommand shares: bad input (a missing file, an unsupported architecture or type, a
 * shape mismatch, a full disk) ends with one clear line on stderr and exit code 1, never a stack trace; the output
 * file is written under a temporary name and only renamed when complete, so a failure leaves nothing behind.
 */
abstract class ToolCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = {"-q", "--quiet"}, description = "No progress bar and no summary.")
    boolean quiet;

    @CommandLine.Option(names = "--threads", description = "Worker threads (default: all cores).")
    int threads = io.moe4j.tools.ModelWriter.defaultThreads();

    /** The work; returns the exit code. */
    abstract int run() throws Exception;

    @Override
    public final Integer call() throws Exception {
        try {
            return run();
        } catch (Moe4jException | IllegalArgumentException e) {
            String name = spec == null ? "moe4j" : spec.qualifiedName();
            java.io.PrintWriter err = spec == null ? new java.io.PrintWriter(System.err, true) : spec.commandLine().getErr();
            err.println(name + ": error: " + e.getMessage());
            err.flush();
            return 1;
        }
    }
}
