package io.moe4j.tools.cli;

import io.moe4j.tools.hf.DType;
import io.moe4j.tools.hf.HfExporter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Locale;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Writes a GGUF model as a Hugging Face checkpoint folder.",
                "The folder gets safetensors (sharded with an index when large), config.json, generation_config.json and the "
                        + "tokenizer files (tokenizer.model or tokenizer.json, tokenizer_config.json with the chat template). "
                        + "Quantized tensors are dequantized (gpt-oss MXFP4 experts kept)."})
public final class ExportCommand extends ToolCommand {

    @Parameters(index = "0", paramLabel = "IN.gguf", description = "The model to export.")
    Path in;

    @Option(names = {"-o", "--output"}, paramLabel = "HF_DIR", required = true, description = "The folder to write (created if absent).")
    Path out;

    @Option(names = "--dtype", paramLabel = "auto|f32|f16|bf16", defaultValue = "auto",
            description = "Tensor dtype (default: ${DEFAULT-VALUE}: keep F32/F16/BF16, dequantize the rest to F32).")
    String dtype;

    @Option(names = "--max-shard-size", paramLabel = "BYTES", defaultValue = "5000000000",
            description = "Largest safetensors shard in bytes (default: ${DEFAULT-VALUE}).")
    long maxShard;

    @Option(names = "--no-ggml-blocks", description = "Do not keep the quantized blocks of dequantized tensors in ggml_blocks.safetensors"
            + " (they let convert restore quantized tensors bit for bit).")
    boolean noBlocks;

    @Override
    int run() {
        DType d = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "auto" -> null;
            case "f32", "float32" -> DType.F32;
            case "f16", "float16" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype must be auto, f32, f16 or bf16, not " + dtype);
        };
        if (maxShard < 1) throw new IllegalArgumentException("--max-shard-size must be positive");
        HfExporter.export(in, out, new HfExporter.Settings(d, maxShard, !noBlocks, quiet));
        return 0;
    }
}
