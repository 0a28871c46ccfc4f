package io.moe4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.Model;
import io.moe4j.Moe4jException;
import io.moe4j.eval.Evaluator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Measure how well a model predicts a text: perplexity, cross-entropy and bits per byte; "
                + "with --compare, how far a second model (e.g. a quantized file) drifts from the first.")
final class EvalCommand implements Callable<Integer> {
    /** Windows longer than this cost more (attention grows with the window) than they change the figures. */
    static final int DEFAULT_WINDOW_CAP = 4096;
    @Mixin
    ModelOption model;
    @Mixin
    DeviceOption device;
    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT",
            description = "The text file to evaluate on (UTF-8).")
    Path file;
    @Option(names = {"-c", "--ctx"}, paramLabel = "N",
            description = "The number of tokens per window (default: 512 with --llama-compatible, as llama-perplexity, "
                    + "else the model's context, at most " + DEFAULT_WINDOW_CAP + ").")
    Integer ctx;
    @Option(names = "--stride", paramLabel = "S",
            description = "The number of tokens each window advances by; each token is scored once, with at least "
                    + "ctx - S tokens of context once past the first window (default: ctx / 2).")
    Integer stride;
    @Option(names = "--batch", paramLabel = "B", defaultValue = "256",
            description = "The number of tokens per forward pass (default: ${DEFAULT-VALUE}).")
    int batch;
    @Option(names = "--compare", paramLabel = "OTHER_MODEL",
            description = "A second model with the same vocabulary: report its figures too, and the KL divergence "
                    + "KL(MODEL || OTHER_MODEL) of the next-token distributions and how often their top tokens agree.")
    Path compare;
    @Option(names = "--llama-compatible",
            description = "Use llama-perplexity's windowing: non-overlapping windows of ctx tokens, each starting "
                    + "with BOS, scoring only the second half of each window; at least 2 * ctx tokens are needed.")
    boolean llamaCompatible;
    @Option(names = "--json", paramLabel = "FILE", description = "Also write the figures to this file as JSON.")
    Path json;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        String text;
        long textBytes;
        try {
            byte[] bytes = Files.readAllBytes(file);
            textBytes = bytes.length;
            text = new String(bytes, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new Moe4jException("no such file: " + file);
        }
        Path path = model.resolve(err);
        try (Model m = device.load(path, err);
             Model other = compare != null ? device.load(compare, err) : null) {
            if (other != null && !sameVocabulary(m, other)) {
                throw new Moe4jException(compare + " has another vocabulary than " + path + ": KL divergence needs the same tokens");
            }
            int n = ctx != null ? ctx : llamaCompatible ? 512 : Math.min(m.defaultContextSize(), DEFAULT_WINDOW_CAP);
            int s = stride != null ? stride : n / 2;
            if (n > m.config().contextLength()) {
                err.println("moe4j: warning: --ctx " + n + " is longer than the model's context of " + m.config().contextLength());
            }
            Evaluator.Options o = new Evaluator.Options(n, s, batch, llamaCompatible);
            int[] tokens = Evaluator.tokenize(m.tokenizer(), text, llamaCompatible);
            if (llamaCompatible) textBytes = 0; // not every token is scored: bits per byte counts the scored ones
            ProgressBar bar = new ProgressBar(err, "eval", "windows");
            Evaluator.Result r = Evaluator.evaluate(m.transformer(), other != null ? other.transformer() : null,
                    m.tokenizer(), tokens, textBytes, o, (done, total, evaluated) -> bar.update(done, total,
                            evaluated / bar.seconds(), "tokens"));
            bar.finish();
            out.printf("%s: %d tokens scored (of %d), ctx %d, %s%n", path.getFileName(), r.figures().tokens(),
                    tokens.length, n, llamaCompatible ? "llama-perplexity windows (second half of each scored)" : "stride " + s);
            print(out, "model", r.figures());
            if (r.compared() != null) {
                print(out, "compare", r.compared());
                Evaluator.Divergence d = r.divergence();
                out.printf("KL divergence (model || compare): mean %.6f, 99%% %.6f, max %.6f; same top token: %.3f%%%n",
                        d.meanKld(), d.kld99(), d.maxKld(), 100 * d.top1Agreement());
            }
            out.printf("%.1f tokens/s (%d tokens evaluated in %.2f s)%n", r.tokensPerSecond(), r.evaluated(), r.seconds());
            out.flush();
            if (json != null) writeJson(r, path, n, s, tokens.length);
        }
        return 0;
    }

    private static void print(PrintWriter out, String label, Evaluator.Figures f) {
        out.printf("%-8s perplexity %.4f | cross-entropy %.6f nats/token, %.6f bits/token | %.6f bits/byte (%d bytes)%n",
                label, f.perplexity(), f.crossEntropy(), f.bitsPerToken(), f.bitsPerByte(), f.bytes());
    }

    private static boolean sameVocabulary(Model a, Model b) {
        var ta = a.tokenizer();
        var tb = b.tokenizer();
        if (ta.vocabSize() != tb.vocabSize() || a.transformer().vocabSize() != b.transformer().vocabSize()) return false;
        for (int i = 0; i < ta.vocabSize(); i++) if (!ta.tokenText(i).equals(tb.tokenText(i))) return false;
        return true;
    }

    private void writeJson(Evaluator.Result r, Path modelPath, int n, int s, int tokenCount) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("model", modelPath.toString());
        j.put("file", file.toString());
        j.put("ctx", n);
        if (!llamaCompatible) j.put("stride", s);
        j.put("llama_compatible", llamaCompatible);
        j.put("tokens", tokenCount);
        j.put("result", figures(r.figures()));
        if (r.compared() != null) {
            j.put("compare_model", compare.toString());
            j.put("compare", figures(r.compared()));
            Evaluator.Divergence d = r.divergence();
            j.put("kl_divergence_mean", d.meanKld());
            j.put("kl_divergence_p99", d.kld99());
            j.put("kl_divergence_max", d.maxKld());
            j.put("same_top_token", d.top1Agreement());
        }
        j.put("tokens_evaluated", r.evaluated());
        j.put("seconds", r.seconds());
        j.put("tokens_per_second", r.tokensPerSecond());
        try {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), j);
        } catch (IOException e) {
            throw new Moe4jException("cannot write " + json + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, Object> figures(Evaluator.Figures f) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scored_tokens", f.tokens());
        m.put("perplexity", f.perplexity());
        m.put("cross_entropy_nats", f.crossEntropy());
        m.put("bits_per_token", f.bitsPerToken());
        m.put("bits_per_byte", f.bitsPerByte());
        m.put("bytes", f.bytes());
        return m;
    }
}
