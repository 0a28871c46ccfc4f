package io.moe4j.tools.cli;

import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.synth.ModelShape;
import io.moe4j.tools.synth.Presets;
import io.moe4j.tools.synth.Synth;
import io.moe4j.tools.quant.FileType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

@Command(name = "synth", mixinStandardHelpOptions = true,
        description = {"Writes a random-weight model of a real shape as a GGUF file that moe4j and llama.cpp load.",
                "Deterministic for a seed; streamed (never the whole model in memory)."})
public final class SynthCommand extends ToolCommand {

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "tiny",
            description = "The shape to synthesize: olmoe-1b-7b, qwen3-30b-a3b, mixtral-8x7b, gpt-oss-20b, gpt-oss-120b, qwen1.5-moe-a2.7b, qwen3-4b, "
                    + "deepseek-v2-lite, deepseek-v3, tiny, tiny-dense, tiny-qwen2, tiny-qwen3, tiny-qwen3moe, tiny-qwen2moe, tiny-olmoe, "
                    + "tiny-gpt-oss, tiny-deepseek2 (default: ${DEFAULT-VALUE}; --list shows them).")
    String preset;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT.gguf", description = "The file to write (required unless --list).")
    Path out;

    @Option(names = {"-t", "--type"}, paramLabel = "T", defaultValue = "Q8_0",
            description = "Weight type / mix as for quantize (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--experts-type", paramLabel = "T", description = "Type of the expert tensors (e.g. MXFP4).")
    String expertsType;

    @Option(names = "--seed", defaultValue = "42", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--dense-equivalent", paramLabel = "active|total",
            description = "Write the dense baseline of the MoE shape: same depth and width, one FFN matching the active or total FFN parameters.")
    String denseEquivalent;

    @Option(names = "--list", description = "List the presets with their parameter counts and exit.")
    boolean list;

    @Option(names = "--layers", paramLabel = "N", description = "Override: number of blocks.") Integer layers;
    @Option(names = "--experts", paramLabel = "E", description = "Override: routed experts per layer (0: dense).") Integer experts;
    @Option(names = "--top-k", paramLabel = "K", description = "Override: experts used per token.") Integer topK;
    @Option(names = {"--embd", "--hidden"}, paramLabel = "N", description = "Override: embedding (hidden) size.") Integer embd;
    @Option(names = "--heads", paramLabel = "N", description = "Override: attention heads.") Integer heads;
    @Option(names = "--kv-heads", paramLabel = "N", description = "Override: key/value heads.") Integer kvHeads;
    @Option(names = "--head-dim", paramLabel = "N", description = "Override: head size.") Integer headDim;
    @Option(names = "--ff", paramLabel = "N", description = "Override: dense FFN size (the expert size of llama/olmoe MoE).") Integer ff;
    @Option(names = "--expert-ff", paramLabel = "N", description = "Override: expert FFN size (qwen3moe, qwen2moe, gpt-oss, deepseek2).") Integer expertFf;
    @Option(names = "--shared-ff", paramLabel = "N", description = "Override: shared expert FFN size (qwen2moe; deepseek2: all shared experts together).") Integer sharedFf;
    @Option(names = "--dense-layers", paramLabel = "N", description = "Override: leading dense blocks before the first MoE block (deepseek2).") Integer denseLayers;
    @Option(names = "--vocab", paramLabel = "N", description = "Override: vocabulary size (at least 259).") Integer vocab;
    @Option(names = "--ctx", paramLabel = "N", description = "Override: context length.") Integer ctx;
    @Option(names = "--rope-base", paramLabel = "X", description = "Override: RoPE base.") Double ropeBase;
    @Option(names = "--name", description = "Override: general.name.") String name;

    private static String count(long n) {
        return n >= 1e9 ? String.format(Locale.ROOT, "%.2fB", n / 1e9) : String.format(Locale.ROOT, "%.2fM", n / 1e6);
    }

    @Override
    int run() {
        if (list) {
            for (Map.Entry<String, ModelShape> e : Presets.all().entrySet()) {
                ModelShape s = e.getValue();
                spec.commandLine().getOut().printf(Locale.ROOT, "%-20s %-9s %3d layers, embd %5d, %s, %s params (%s active)%n",
                        e.getKey(), s.arch(), s.layers(), s.embd(), s.isMoe() ? s.experts() + " experts top-" + s.topK() : "dense",
                        count(s.totalParams()), count(s.activeParams()));
            }
            return 0;
        }
        if (out == null) throw new IllegalArgumentException("missing -o OUT.gguf");
        ModelShape.Builder b = Presets.get(preset).toBuilder();
        if (layers != null) b.layers = layers;
        if (experts != null) b.experts = experts;
        if (topK != null) b.topK = topK;
        if (embd != null) b.embd = embd;
        if (heads != null) b.heads = heads;
        if (kvHeads != null) b.kvHeads = kvHeads;
        if (headDim != null) b.headDim = headDim;
        if (ff != null) b.ff = ff;
        if (expertFf != null) b.expertFf = expertFf;
        if (sharedFf != null) b.sharedFf = sharedFf;
        if (vocab != null) b.vocab = vocab;
        if (ctx != null) b.ctx = ctx;
        if (ropeBase != null) b.ropeBase = ropeBase;
        if (name != null) b.name = name;
        if (experts != null && experts == 0) b.topK = 0;
        if (denseLayers != null) {
            if (b.routing == null) throw new IllegalArgumentException("--dense-layers needs a preset with leading dense blocks (deepseek2)");
            ModelShape.Routing r = b.routing;
            b.routing = new ModelShape.Routing(denseLayers, r.groups(), r.groupsUsed(), r.sigmoid(), r.normalize(), r.scale());
        }
        ModelShape shape = b.build().validate();
        FileType ft = FileType.parse(type);
        GgmlType et = expertsType == null ? null : FileType.parseTensorType(expertsType);
        if (denseEquivalent != null) {
            boolean total = switch (denseEquivalent.toLowerCase(Locale.ROOT)) {
                case "total" -> true;
                case "active" -> false;
                default -> throw new IllegalArgumentException("--dense-equivalent must be active or total, not " + denseEquivalent);
            };
            int multiple = Math.max(32, ft.defaultType.blockSize);
            shape = Presets.denseEquivalent(shape, total, multiple);
            et = null;
        }
        Synth.write(new Synth.Spec(shape, ft, et, seed), out, threads, quiet);
        return 0;
    }
}
