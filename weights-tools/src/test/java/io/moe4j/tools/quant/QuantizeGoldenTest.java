package io.moe4j.tools.quant;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.model.GoldenCase;
import io.moe4j.tools.Logits;
import io.moe4j.SharedData;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * quantize of the golden F32 model against llama-quantize's variants in ../shared/golden: the Q8_0, Q4_0 (made with
 * --pure), MXFP4_MOE, F16 and BF16 files are byte-identical as a whole, and so are Q4_K_M and Q6_K (the issue asks
 * less of those: the same tensor types and each K-quant tensor's RMSE against the F32 source no worse than
 * llama.cpp's, checked separately). Our logits on our file stay within rule 2 of the golden README of llama.cpp's
 * logits on llama.cpp's file.
 */
class QuantizeGoldenTest {
    @TempDir
    Path tmp;

    private Path quantize(String id, String type, boolean pure) {
        Path out = tmp.resolve(id + ".gguf");
        TypeRules.Options o = new TypeRules.Options(FileType.parse(type), null, null, null, pure, false);
        Quantizer.quantize(SharedData.goldenModel("llama_moe-f32"), out, new Quantizer.Settings(o, false, 2, true));
        return out;
    }

    /** The whole file is byte-identical: metadata order, tensor order and infos, padding and every block. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama_moe-q8_0, Q8_0, false", "llama_moe-q4_0, Q4_0, true", "llama_moe-mxfp4_moe, MXFP4, false",
            "llama_moe-f16, F16, false", "llama_moe-bf16, BF16, false",
            "llama_moe-q4_k_m, Q4_K, false", "llama_moe-q6_k, Q6_K, false"})
    void byteIdenticalToLlamaQuantize(String id, String type, boolean pure) throws Exception {
        Path out = quantize(id, type, pure);
        byte[] ours = Files.readAllBytes(out), theirs = Files.readAllBytes(SharedData.goldenModel(id));
        long mismatch = Arrays.mismatch(ours, theirs);
        if (mismatch >= 0) fail(id + ": first differing byte at offset " + mismatch + " (sizes " + ours.length + " / " + theirs.length + ")");
        checkLogits(id, out);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama_moe-q4_k_m, Q4_K", "llama_moe-q6_k, Q6_K"})
    void kQuantsAreNoWorseThanLlamaCpp(String id, String type) {
        Path out = quantize(id, type, false);
        try (GgufFile src = GgufFile.open(SharedData.goldenModel("llama_moe-f32"));
             GgufFile ours = GgufFile.open(out);
             GgufFile theirs = GgufFile.open(SharedData.goldenModel(id))) {
            assertEquals(theirs.tensors().keySet().stream().toList(), ours.tensors().keySet().stream().toList(), "tensor order");
            int identical = 0, k = 0;
            for (GgufTensor t : theirs.tensors().values()) {
                GgufTensor o = ours.tensor(t.name());
                assertEquals(t.type(), o.type(), t.name() + " type");
                assertTrue(Arrays.equals(t.dims(), o.dims()), t.name() + " dims");
                if (t.type() != GgmlType.Q4_K && t.type() != GgmlType.Q6_K) continue;
                k++;
                if (t.data().mismatch(o.data()) < 0) identical++;
                float[] ref = decode(src.tensor(t.name()));
                double rOurs = rmse(ref, decode(o)), rTheirs = rmse(ref, decode(t));
                assertTrue(rOurs <= rTheirs * (1 + 1e-6), t.name() + ": RMSE " + rOurs + " > llama.cpp's " + rTheirs);
            }
            System.out.printf("%s: %d K-quant tensors, RMSE no worse than llama.cpp's, %d byte-identical%n", id, k, identical);
        }
    }

    private static void checkLogits(String id, Path ours) {
        GoldenCase c = GoldenCase.byId(id);
        double d = Logits.maxAbsDiff(c.storedRows(Logits.of(ours, c.promptTokens())), c.floats("logits_file_kv_f32"));
        double bound = c.rule2Bound();
        System.out.printf("%s: max |ours on our file - llama.cpp on its file| = %.3g (bound %.3g)%n", id, d, bound);
        assertTrue(d <= bound, id + ": logits differ by " + d + " > " + bound);
    }

    static float[] decode(GgufTensor t) {
        float[] f = new float[Math.toIntExact(t.elementCount())];
        Codec.decode(t.type(), t.data(), 0, f, 0, f.length);
        return f;
    }

    static double rmse(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
        return Math.sqrt(s / a.length);
    }
}
