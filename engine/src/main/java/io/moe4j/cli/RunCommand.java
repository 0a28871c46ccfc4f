package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.generate.StopReason;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt, streaming it to stdout; the speeds go to stderr.")
final class RunCommand implements Callable<Integer> {
    @Mixin
    ModelOption model;
    @Mixin
    DeviceOption device;
    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", defaultValue = "Once upon a time",
            description = "The prompt to continue (default: ${DEFAULT-VALUE}).")
    String prompt;
    @Option(names = {"-n", "--n-predict", "--max-new-tokens"}, paramLabel = "N", defaultValue = "128",
            description = "Generate at most N new tokens, the prompt not counted, as llama.cpp's -n and OpenAI's max_tokens "
                    + "count; -1 goes on until the model ends the text or the context is full (with --context-shift: until the model "
                    + "ends the text) (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;
    @Mixin
    SamplingFlags sampling;
    @Option(names = "--stop", paramLabel = "TEXT",
            description = "Stop when the text contains TEXT, which is not printed; repeat the option for several stop strings.")
    List<String> stop = List.of();
    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "The context size in tokens, prompt and answer together (default: the model's own context, "
                    + "or what fits in the KV budget if less).")
    int ctx;
    @Mixin
    ContextShiftOption contextShift;
    @Mixin
    KvTypeOption kvType;
    @Mixin
    ThreadsOption threads;
    @Mixin
    KvBudgetOption kvBudget;
    @Mixin
    RopeOption rope;
    @Mixin
    BatchOption batchOption;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        SamplingFlags.check(maxNewTokens >= -1, "-n must be -1 (no limit) or 0 or more, got " + maxNewTokens);
        SamplingFlags.check(ctx >= 0, "--ctx must be 0 (the model's) or more, got " + ctx);
        contextShift.check();
        SamplingOptions samplingOptions = sampling.options();
        batchOption.check();
        io.moe4j.model.RopeOverrides ropeOverrides = rope.overrides();
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        Path path = model.resolve(err);
        try (Model m = device.load(path, err, ropeOverrides)) {
            kvBudget.apply(m);
            batchOption.apply(m);
            int context = ctx > 0 ? ctx : m.defaultContextSize(kvType.type());
            err.println("moe4j: " + ContextInfo.describe(m, context, ctx, kvType.type()));
            int promptTokens = m.tokenize(prompt).length;
            if (promptTokens > context) {
                throw new IllegalArgumentException("the prompt is " + promptTokens + " tokens, more than the context of "
                        + context + " tokens; give a larger --ctx or a shorter prompt");
            }
            int maxTokens = maxNewTokens < 0 ? Integer.MAX_VALUE : maxNewTokens;
            GenerateOptions options = contextShift.apply(new GenerateOptions(maxTokens, samplingOptions, stop, context, kvType.type()), context);
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
                    r.timings().decodeTokensPerSecond(), r.stopReason() == StopReason.CONTEXT_FULL
                            ? "length (the context of " + context + " tokens is full; --context-shift goes on)"
                            : r.stopReason().name().toLowerCase());
        }
        return 0;
    }
}
