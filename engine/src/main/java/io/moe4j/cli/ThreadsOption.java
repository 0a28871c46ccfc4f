package io.moe4j.cli;

import io.moe4j.kernels.Threads;
import picocli.CommandLine.Option;

/** {@code --threads K}, shared by every command that computes. */
public final class ThreadsOption {
    @Option(names = {"-t", "--threads"}, paramLabel = "K",
            description = "The number of worker threads (default: all available cores).")
    Integer threads;

    public void apply() {
        if (threads != null) {
            SamplingFlags.check(threads >= 1, "--threads must be 1 or more, got " + threads);
            Threads.set(threads);
        }
    }
}
