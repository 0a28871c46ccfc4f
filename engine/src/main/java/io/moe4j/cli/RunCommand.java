package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.model.DefaultModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "run", description = "Generate text from a prompt, streaming it to stdout.")
final class RunCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "GGUF model file (default: a small embedded random-weight MoE)")
    Path model;
    @Option(names = {"-p", "--prompt"}, paramLabel = "PROMPT", defaultValue = "Once upon a time", description = "prompt text (default: ${DEFAULT-VALUE})")
    String prompt;
    @Option(names = {"-n", "--steps"}, paramLabel = "N", defaultValue = "128",
            description = "sequence length in tokens, prompt included, as llama2.c and llama3.java count it: "
                    + "generation stops after N positions (default: ${DEFAULT-VALUE})")
    int steps;
    @Option(names = "--max-new-tokens", paramLabel = "M", description = "instead of -n: generate at most M new tokens")
    Integer maxNewTokens;
    @Option(names = "--temp", paramLabel = "T", defaultValue = "0.8", description = "temperature; 0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--top-k", defaultValue = "40", description = "top-k, 0 = off (default: ${DEFAULT-VALUE})")
    int topK;
    @Option(names = "--top-p", defaultValue = "0.95", description = "top-p, 1 = off (default: ${DEFAULT-VALUE})")
    float topP;
    @Option(names = "--min-p", defaultValue = "0.05", description = "min-p, 0 = off (default: ${DEFAULT-VALUE})")
    float minP;
    @Option(names = "--repeat-penalty", defaultValue = "1.0", description = "repetition penalty, 1 = off (default: ${DEFAULT-VALUE})")
    float repeatPenalty;
    @Option(names = "--presence-penalty", defaultValue = "0") float presencePenalty;
    @Option(names = "--frequency-penalty", defaultValue = "0") float frequencyPenalty;
    @Option(names = "--stop", description = "stop string (repeatable)")
    List<String> stop = List.of();
    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0", description = "context size in tokens (default: the model's, at most 4096)")
    int ctx;
    @Option(names = "--kv-type", defaultValue = "f16", converter = KvTypeConverter.class, description = "KV cache type f16|f32 (default: ${DEFAULT-VALUE})")
    KvBuffer.Type kvType;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        Path path = model;
        if (path == null) {
            path = DefaultModel.ensure();
            err.println("moe4j: no -m given: using the embedded default model, a small random-weight MoE ("
                    + DefaultModel.DESCRIPTION + "); its text is gibberish by design");
        }
        SamplingOptions sampling = new SamplingOptions(temperature, topK, topP, minP, repeatPenalty, 64,
                presencePenalty, frequencyPenalty, seed);
        try (Model m = Model.load(path, ConsoleLoadProgress.of(err, path))) {
            // N positions are fed to the model; the prompt's last position already yields the first new token.
            int promptTokens = m.tokenize(prompt).length;
            int maxTokens = maxNewTokens != null ? maxNewTokens : Math.max(0, steps - promptTokens + 1);
            if (maxNewTokens == null && maxTokens == 0) {
                err.println("moe4j: the prompt is " + promptTokens + " tokens, -n " + steps + " leaves no room for new ones");
            }
            GenerateOptions options = new GenerateOptions(maxTokens, sampling, stop, ctx, kvType);
            out.print(prompt);
            out.flush();
            GenerationResult r = m.generate(prompt, options, token -> {
                out.print(token.text());
                out.flush();
            });
            out.println();
            out.flush();
            err.printf("%nprompt: %d tokens, %.2f tokens/s | decode: %d tokens, %.2f tokens/s | stop: %s%n",
                    r.timings().promptTokens(), r.timings().promptTokensPerSecond(), r.timings().generatedTokens(),
                    r.timings().decodeTokensPerSecond(), r.stopReason().name().toLowerCase());
        }
        return 0;
    }
}
