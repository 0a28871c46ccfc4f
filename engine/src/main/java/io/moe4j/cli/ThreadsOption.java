package io.moe4j.cli;

import io.moe4j.kernels.Parallel;
import picocli.CommandLine.Option;

/** {@code --threads K}, shared by every command that computes. */
public final class ThreadsOption {
    @Option(names = {"-t", "--threads"}, paramLabel = "K", description = "worker threads (default: available cores)")
    Integer threads;

    public void apply() {
        if (threads != null) Parallel.setThreads(threads);
    }
}
