package io.moe4j.tools.cli;

import io.moe4j.tools.upcycle.Upcycler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;

@Command(name = "upcycle", mixinStandardHelpOptions = true,
        description = {"Sparse upcycling: turns a dense llama or qwen3 GGUF model into a MoE model.",
                "Each layer's experts are copies of its FFN, with a fresh router. Without noise the MoE computes the dense "
                        + "model's logits."})
public final class UpcycleCommand extends ToolCommand {

    @Parameters(index = "0", paramLabel = "DENSE.gguf", description = "The dense model.")
    Path in;

    @Option(names = {"-o", "--output"}, paramLabel = "MOE.gguf", required = true, description = "The file to write.")
    Path out;

    @Option(names = "--experts", required = true, description = "Experts per layer.")
    int experts;

    @Option(names = "--top-k", required = true, description = "Experts used per token.")
    int topK;

    @Option(names = "--noise", defaultValue = "0", description = "Noise added to each expert copy, relative to each row's RMS (default: ${DEFAULT-VALUE}).")
    double noise;

    @Option(names = "--seed", defaultValue = "42", description = "Seed of the router and the noise (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    int run() {
        Upcycler.upcycle(in, out, new Upcycler.Spec(experts, topK, noise, seed), threads, quiet);
        return 0;
    }
}
