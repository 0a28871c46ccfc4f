package io.moe4j.cli;

import io.moe4j.compress.ModelCompressor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "decompress", mixinStandardHelpOptions = true,
        description = "Restore a file written by 'moe4j compress', with the same model file and moe4j version.")
final class DecompressCommand implements Callable<Integer> {
    @Mixin
    ModelOption model;
    @Parameters(index = "0", paramLabel = "IN", description = "The compressed file.")
    Path in;
    @Parameters(index = "1", paramLabel = "OUT",
            description = "The file to restore into (replaced if it exists; not written at all if decompression fails).")
    Path out;
    @Mixin
    CoderThreads coder;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        return coder.run(spec, model.resolve(spec.commandLine().getErr()), "decompress", (c, progress) -> c.decompress(in, out,
                        new ModelCompressor.Options(1, 1, coder.lanes, coder.jobs()), progress),
                s -> String.format("decompressed %d bytes to %d bytes, %d tokens in %d chunks, %.4f MB/s (%.1f s)",
                        s.compressedBytes(), s.originalBytes(), s.tokens(), s.chunks(), s.megabytesPerSecond(), s.seconds()));
    }
}
