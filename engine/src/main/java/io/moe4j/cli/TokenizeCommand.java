package io.moe4j.cli;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.tokenizer.Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of a text as a JSON array, as the model's tokenizer splits it.")
final class TokenizeCommand implements Callable<Integer> {
    @Mixin
    ModelOption modelOption;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--text", paramLabel = "TEXT", description = "The text to tokenize.") String text;
        @Option(names = "--file", paramLabel = "FILE", description = "A UTF-8 file whose content to tokenize.") Path file;
    }

    @Option(names = "--no-bos", description = "Do not add the BOS token, even where the model asks for it.")
    boolean noBos;
    @Option(names = "--no-parse-special", description = "Treat the text of special tokens (such as <s>) as plain text.")
    boolean noSpecial;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        String text = input.text;
        if (text == null) {
            try {
                text = Files.readString(input.file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new Moe4jException("cannot read " + input.file + ": " + e.getMessage(), e);
            }
        }
        Path model = modelOption.resolve(spec.commandLine().getErr());
        try (GgufFile f = GgufFile.open(model)) {
            Tokenizer tok = Tokenizer.fromGguf(f.metadata());
            int[] ids = tok.encode(text, !noBos && tok.addBosByDefault(), !noSpecial);
            spec.commandLine().getOut().println(Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(", ", "[", "]")));
        }
        return 0;
    }
}
