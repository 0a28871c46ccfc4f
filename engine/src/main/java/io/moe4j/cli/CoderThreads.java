package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.compress.ModelCompressor;
import io.moe4j.kernels.Threads;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.function.Function;

/** Options and helpers shared by {@code compress} and {@code decompress}: how chunks are spread over the cores. */
final class CoderThreads {
    @Option(names = "--lanes", paramLabel = "K", defaultValue = "1",
            description = "The number of chunks evaluated together in one forward pass (default: ${DEFAULT-VALUE}).")
    int lanes;
    @Option(names = "--jobs", paramLabel = "J",
            description = "The number of threads that each code a group of chunks, each running its forward passes "
                    + "on one core; 1 runs one group at a time with the forward pass spread over all cores "
                    + "(default: the number of cores).")
    Integer jobs;
    @Option(names = {"-t", "--threads"}, paramLabel = "K",
            description = "The number of threads of one forward pass when --jobs is 1 (default: the number of cores).")
    Integer threads;
    @Mixin
    DeviceOption device;

    int jobs() {
        return jobs != null ? jobs : Runtime.getRuntime().availableProcessors();
    }

    /** Several jobs each run their forward passes single-threaded, so that they do not compete for the cores. */
    void apply() {
        if (jobs() > 1) Threads.set(1);
        else if (threads != null) Threads.set(threads);
    }

    /** One direction of the coder, given the loaded model's coder and a progress sink. */
    @FunctionalInterface
    interface Coding {
        ModelCompressor.Stats run(ModelCompressor coder, ModelCompressor.Progress progress);
    }

    /** Loads the model, runs {@code coding} with a progress bar on stderr, and prints {@code report} of its figures. */
    int run(CommandSpec spec, Path model, String label, Coding coding, Function<ModelCompressor.Stats, String> report) {
        PrintWriter err = spec.commandLine().getErr();
        try (Model m = device.load(model, err)) {
            ModelCompressor coder = new ModelCompressor(m, version(spec));
            apply();
            ProgressBar bar = new ProgressBar(err, label, "bytes");
            ModelCompressor.Stats s = coding.run(coder, bar::update);
            bar.finish();
            err.println(report.apply(s));
        }
        return 0;
    }

    /** The version moe4j reports (the root command's), which compressed files record. */
    static String version(CommandSpec spec) {
        String[] v = spec.root().version();
        return v.length > 0 ? v[0] : "moe4j";
    }
}
