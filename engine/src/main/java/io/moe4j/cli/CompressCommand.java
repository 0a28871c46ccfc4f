package io.moe4j.cli;

import io.moe4j.compress.ModelCompressor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "compress", mixinStandardHelpOptions = true,
        description = "Compress a file losslessly with a language model: each token is arithmetic-coded with the "
                + "probability the model gives it. Decompress with the same model file and moe4j version.")
final class CompressCommand implements Callable<Integer> {
    @Mixin
    ModelOption model;
    @Parameters(index = "0", paramLabel = "IN", description = "The file to compress (any bytes).")
    Path in;
    @Parameters(index = "1", paramLabel = "OUT", description = "The compressed file to write (replaced if it exists).")
    Path out;
    @Option(names = "--chunk-tokens", paramLabel = "N",
            description = "The number of tokens per independent chunk; longer chunks give the model more context, "
                    + "shorter ones more parallelism (default: " + ModelCompressor.DEFAULT_CHUNK_TOKENS
                    + ", at most the model's context).")
    Integer chunkTokens;
    @Option(names = "--batch", paramLabel = "B", defaultValue = "256",
            description = "The number of tokens of each chunk evaluated per forward pass (default: ${DEFAULT-VALUE}).")
    int batch;
    @Mixin
    CoderThreads coder;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        return coder.run(spec, model.resolve(spec.commandLine().getErr()), "compress", (c, progress) -> c.compress(in, out, new ModelCompressor.Options(
                        chunkTokens != null ? chunkTokens : c.defaultChunkTokens(), batch, coder.lanes, coder.jobs()), progress),
                s -> String.format("compressed %d bytes to %d bytes: %.4f bits per byte, %d tokens in %d chunks, "
                                + "%.4f MB/s (%.1f s)", s.originalBytes(), s.compressedBytes(), s.bitsPerByte(), s.tokens(),
                        s.chunks(), s.megabytesPerSecond(), s.seconds()));
    }
}
