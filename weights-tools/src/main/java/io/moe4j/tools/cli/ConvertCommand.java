package io.moe4j.tools.cli;

import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.hf.HfConverter;
import io.moe4j.tools.quant.FileType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Converts a Hugging Face checkpoint folder to GGUF.",
                "The folder holds config.json, model*.safetensors with or without an index, tokenizer.json or tokenizer.model "
                        + "and tokenizer_config.json of Llama, Mistral, Mixtral, Qwen3, Qwen3-MoE, Qwen2-MoE, OLMoE or GPT-OSS; "
                        + "the GGUF gets llama.cpp's tensor names, Q/K permutation, metadata, tokenizer and chat template."})
public final class ConvertCommand extends ToolCommand {

    @Parameters(index = "0", paramLabel = "HF_DIR", description = "The checkpoint folder.")
    Path in;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT.gguf", required = true, description = "The file to write.")
    Path out;

    @Option(names = {"-t", "--type"}, paramLabel = "T",
            description = "Weight type / mix as for quantize (default: keep the checkpoint's F32/F16/BF16, gpt-oss MXFP4 experts stay MXFP4).")
    String type;

    @Option(names = "--experts-type", paramLabel = "T", description = "Type of the expert tensors.")
    String expertsType;

    @Option(names = "--pure", description = "No per-tensor mix: every matrix gets --type.")
    boolean pure;

    @Override
    int run() {
        FileType ft = type == null ? null : FileType.parse(type);
        GgmlType et = expertsType == null ? null : FileType.parseTensorType(expertsType);
        HfConverter.convert(in, out, new HfConverter.Settings(ft, et, pure, threads, quiet));
        return 0;
    }
}
