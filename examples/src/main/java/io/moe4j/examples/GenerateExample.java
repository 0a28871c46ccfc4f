package io.moe4j.examples;

import io.moe4j.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.model.DefaultModel;

import java.nio.file.Path;
import java.util.List;

/** Generates a continuation of a prompt with a GGUF model, streaming the text to standard output. */
public final class GenerateExample {

    /** Arguments: [MODEL.gguf [PROMPT]]; without a model file, the embedded default model. */
    public static void main(String[] args) {
        Path file = args.length > 0 ? Path.of(args[0]) : DefaultModel.ensure();
        String prompt = args.length > 1 ? args[1] : "Once upon a time";
        GenerationResult result = generate(file, prompt, 64);
        System.out.println();
        System.out.println(result.stopReason() + " | " + result.timings());
    }

    /** Prints each piece of text as soon as it is decoded and returns the whole result. */
    public static GenerationResult generate(Path file, String prompt, int maxNewTokens) {
        GenerateOptions options = GenerateOptions.defaults()
                .withMaxTokens(maxNewTokens)
                .withStop(List.of("\n\n"))
                .withSampling(SamplingOptions.DEFAULT.withTemperature(0.7f).withSeed(42));
        try (Model model = Model.load(file)) {
            return model.generate(prompt, options, token -> System.out.print(token.text()));
        }
    }
}
