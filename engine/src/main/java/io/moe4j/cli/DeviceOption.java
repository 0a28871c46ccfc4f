package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.kernels.Backend;
import io.moe4j.model.RopeOverrides;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;

/** {@code --device NAME}, shared by the commands that run a model: which backend runs it. */
public final class DeviceOption {
    @Option(names = "--device", paramLabel = "NAME", defaultValue = "cpu",
            description = "Where the model runs: cpu (the default: SIMD kernels on every core) or cuda (an NVIDIA GPU, in builds with GPU support).")
    String device = "cpu";

    /** The backend; an unknown device, or one this build or machine cannot run, is a clear error before any loading. */
    public Backend backend() {
        return Backend.open(device);
    }

    /** Loads {@code path} on this device, printing the loading progress to {@code err}. */
    public Model load(Path path, PrintWriter err) {
        return load(path, err, RopeOverrides.NONE);
    }

    /** {@link #load(Path, PrintWriter)} with RoPE parameters other than the file's. */
    public Model load(Path path, PrintWriter err, RopeOverrides rope) {
        backend();
        return Model.load(path, new Model.LoadOptions(device, ConsoleLoadProgress.of(err, path), rope));
    }
}
