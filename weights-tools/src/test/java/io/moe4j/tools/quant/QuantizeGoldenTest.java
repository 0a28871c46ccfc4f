package io.moe4j.tools.quant;

import io.moe4j.tools.Shared;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** quantize of the golden F32 model against llama-quantize's files of ../shared/golden. */
class QuantizeGoldenTest {
    @TempDir
    Path tmp;

    /** The whole file is byte-identical: metadata order, tensor order and infos, padding and every block. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama_moe-f16, F16, false", "llama_moe-bf16, BF16, false"})
    void byteIdenticalToLlamaQuantize(String id, String type, boolean pure) throws Exception {
        Path out = tmp.resolve(id + ".gguf");
        TypeRules.Options o = new TypeRules.Options(FileType.parse(type), null, null, null, pure, false);
        Quantizer.quantize(Shared.goldenModel("llama_moe-f32"), out, new Quantizer.Settings(o, false, 2, true));
        byte[] ours = Files.readAllBytes(out), theirs = Files.readAllBytes(Shared.goldenModel(id));
        assertEquals(theirs.length, ours.length, "file size");
        long mismatch = java.util.Arrays.mismatch(ours, theirs);
        if (mismatch >= 0) fail(id + ": first differing byte at offset " + mismatch);
    }
}
