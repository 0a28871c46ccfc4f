package io.moe4j.tools.cli;

import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.quant.Quantizer;
import io.moe4j.tools.quant.TypeRules;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Converts the weights of a GGUF file to another type, with llama-quantize's per-tensor rules.",
                "Norms, biases, the router and other 1-D tensors stay F32; Q8_0, Q4_0 and MXFP4 blocks are "
                        + "bit-identical to llama.cpp's. Reads F32, F16 and BF16 tensors (quantized ones with --allow-requantize)."})
public final class QuantizeCommand extends ToolCommand {

    @Parameters(index = "0", paramLabel = "IN.gguf", description = "The model to convert.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT.gguf", description = "The file to write.")
    Path out;

    @Option(names = {"-t", "--type"}, paramLabel = "T",
            description = "Q8_0, Q4_0, Q4_K (= llama.cpp's Q4_K_M mix), Q6_K, MXFP4 (= MXFP4_MOE: MXFP4 experts, Q8_0 elsewhere), F16, BF16 or F32.")
    String type;

    @Option(names = "--experts-type", paramLabel = "T",
            description = "Type of the routed expert tensors (e.g. MXFP4 experts with --type Q8_0); without --type only the experts are converted.")
    String expertsType;

    @Option(names = "--keep-output", description = "Leave output.weight in its current type (llama-quantize --leave-output-tensor).")
    boolean keepOutput;

    @Option(names = "--output-type", paramLabel = "T", description = "Type of output.weight.")
    String outputType;

    @Option(names = "--token-embedding-type", paramLabel = "T", description = "Type of token_embd.weight.")
    String tokenEmbeddingType;

    @Option(names = "--pure", description = "Every quantized tensor gets --type: no per-tensor mix (llama-quantize --pure).")
    boolean pure;

    @Option(names = "--allow-requantize", description = "Accept already quantized input tensors (they are decoded first).")
    boolean allowRequantize;

    @Override
    int run() {
        FileType ft = type == null ? null : FileType.parse(type);
        GgmlType et = expertsType == null ? null : FileType.parseTensorType(expertsType);
        if (ft == null && et == null) throw new IllegalArgumentException("give --type and/or --experts-type");
        TypeRules.Options o = new TypeRules.Options(ft, et,
                outputType == null ? null : FileType.parseTensorType(outputType),
                tokenEmbeddingType == null ? null : FileType.parseTensorType(tokenEmbeddingType), pure, keepOutput);
        Quantizer.quantize(in, out, new Quantizer.Settings(o, allowRequantize, threads, quiet));
        return 0;
    }
}
