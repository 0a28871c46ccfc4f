package io.moe4j.cli;

import io.moe4j.ByteSize;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.ModelStats;
import io.moe4j.model.Transformer;
import io.moe4j.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Describe a GGUF model: architecture, hyper-parameters, tokenizer, tensors, parameter and byte counts.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "FILE",
            description = "The GGUF model file to describe, as an alternative to -m.")
    Path positional;
    @Mixin
    ModelOption modelOption;
    @Mixin
    DeviceOption device;
    @Option(names = "--metadata", description = "Also list every metadata key and its value.")
    boolean allMetadata;
    @Option(names = "--no-tensors", description = "Leave out the table of tensors.")
    boolean noTensors;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (positional != null && modelOption.given()) throw new IllegalArgumentException("give the model either as FILE or with -m, not both");
        Path model = positional != null ? ModelOption.checkFile(positional) : modelOption.resolve(spec.commandLine().getErr());
        try (GgufFile f = GgufFile.open(model)) {
            out.printf("file          %s (GGUF v%d, %s, %d tensors, %d metadata keys)%n", f.path(), f.version(),
                    ByteSize.format(f.fileSize()), f.tensors().size(), f.metadata().keys().size());
            out.printf("name          %s%n", f.metadata().getString("general.name", "(none)"));
            Transformer tf = Transformer.of(f, device.backend(), io.moe4j.model.LoadProgress.NONE);
            ModelConfig c = tf.config();
            out.printf("architecture  %s%n", c.arch().name());
            out.printf("layers        %d, embedding %d, vocabulary %d, context %d%n", c.blockCount(), c.embeddingLength(),
                    tf.vocabSize(), c.contextLength());
            if (c.mla() != null) {
                ModelConfig.Mla m = c.mla();
                out.printf("attention     latent (MLA), %d heads, q rank %s, kv rank %d, query/key head %d + %d roped, value head %d, "
                                + "RoPE %s dims %d base %.0f scaling %s%s%n",
                        c.headCount(), m.qLoraRank() > 0 ? Integer.toString(m.qLoraRank()) : "full", m.kvLoraRank(), m.qkNope(),
                        m.qkRope(), m.valueHeadDim(), c.arch().ropeStyle(), c.ropeDim(), c.ropeBase(), c.ropeScaling(),
                        c.ropeScalingFactor() != 1 ? " x" + c.ropeScalingFactor() + " (trained " + c.ropeOriginalContext() + ")" : "");
            } else {
                out.printf("attention     %d heads, %d KV heads, head size %d, RoPE %s dims %d base %.0f scaling %s%s%s%n",
                        c.headCount(), c.kvHeadCount(), c.headDim(), c.arch().ropeStyle(), c.ropeDim(), c.ropeBase(),
                        c.ropeScaling(), c.ropeScalingFactor() != 1 ? " x" + c.ropeScalingFactor() + " (trained " + c.ropeOriginalContext() + ")" : "",
                        c.slidingWindow() > 0 ? ", sliding window " + c.slidingWindow() : "");
            }
            out.printf("kv cache      %d values per token and layer (%s), %s per token with F16%n", c.kvRowsPerToken() * c.kvDim(),
                    c.valuesInKeys() ? "one latent row, the value its first " + c.valueDim() : "keys and values",
                    ByteSize.format((long) c.blockCount() * c.kvRowsPerToken() * io.moe4j.kernels.KvType.F16.bytesFor(c.kvDim())));
            var layers = tf.weights().layers;
            var firstMoe = java.util.Arrays.stream(layers).filter(l -> l.moe() != null).findFirst().orElse(null);
            var firstDense = java.util.Arrays.stream(layers).filter(l -> l.dense() != null).findFirst().orElse(null);
            if (firstMoe != null) {
                var moe = firstMoe.moe();
                String groups = c.expertGroupCount() > 1 ? " from the best " + c.expertGroupUsedCount() + " of " + c.expertGroupCount() + " groups" : "";
                out.printf("experts       %d, %d used per token%s, expert FFN %d%s, gating %s%s, renormalised %s%s%n",
                        c.expertCount(), c.expertUsedCount(), groups, moe.experts().hidden(),
                        moe.shared() != null ? ", shared expert FFN " + moe.shared().hidden() + (moe.sharedGate() != null ? " (gated)" : "") : "",
                        c.gating(), moe.selectionBias() != null ? " with a selection bias" : "", c.normalizeTopK(),
                        c.expertWeightsScale() != 1 ? ", scale " + c.expertWeightsScale() : "");
            }
            if (firstDense != null) {
                out.printf("feed-forward  dense, hidden %d%s%n", firstDense.dense().hidden(),
                        firstMoe != null ? " (blocks 0-" + (c.leadingDenseBlocks() - 1) + "; the others route to experts)" : "");
            }
            try {
                Tokenizer tok = Tokenizer.fromGguf(f.metadata());
                out.printf("tokenizer     %s, %d tokens, BOS %d, EOS %d%n", f.metadata().getString("tokenizer.ggml.model", "?"),
                        tok.vocabSize(), tok.bos(), tok.eos());
            } catch (RuntimeException e) {
                out.printf("tokenizer     unusable: %s%n", e.getMessage());
            }
            ModelStats s = ModelStats.of(f, c);
            out.printf("parameters    %s total, %s active per token (%.1f%%), %s in routed experts%n", count(s.totalParams()),
                    count(s.activeParams()), 100.0 * s.activeParams() / s.totalParams(), count(s.expertParams()));
            out.printf("decode reads  %s of weights per token (of %s)%n", ByteSize.format(s.decodeBytesPerToken()), ByteSize.format(s.totalBytes()));
            Map<String, Integer> types = new TreeMap<>();
            for (GgufTensor t : f.tensors().values()) types.merge(t.type().name(), 1, Integer::sum);
            out.printf("tensor types  %s%n", types);
            if (allMetadata) {
                out.println();
                out.println("metadata:");
                for (Map.Entry<String, GgufValue> e : f.metadata().asMap().entrySet()) {
                    out.printf("  %-48s %s%n", e.getKey(), e.getValue().describe());
                }
            }
            if (!noTensors) {
                out.println();
                out.printf("  %-40s %-6s %-22s %12s%n", "tensor", "type", "shape", "bytes");
                for (GgufTensor t : f.tensors().values()) {
                    out.printf("  %-40s %-6s %-22s %12d%n", t.name(), t.type(), t.shape(), t.byteSize());
                }
            }
        }
        return 0;
    }

    static String count(long n) {
        if (n >= 1_000_000_000L) return String.format("%.2fB", n / 1e9);
        if (n >= 1_000_000L) return String.format("%.2fM", n / 1e6);
        if (n >= 1_000L) return String.format("%.1fK", n / 1e3);
        return Long.toString(n);
    }

}
