package io.moe4j.tools;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;

import java.nio.file.Path;

/** Runs moe4j's forward pass for tests. */
public final class Logits {
    private Logits() {
    }

    /** Logits of every position of {@code tokens} (one batch, F32 KV cache). */
    public static float[] of(Path model, int[] tokens) {
        try (GgufFile f = GgufFile.open(model)) {
            Transformer tf = Transformer.of(f);
            KvCache cache = new KvCache(tf.config(), tokens.length, KvType.F32);
            return tf.forward(tokens, tokens.length, cache, true, null);
        }
    }

    /** The hyper-parameters moe4j reads from a model file. */
    public static io.moe4j.model.ModelConfig config(Path model) {
        try (GgufFile f = GgufFile.open(model)) {
            return Transformer.of(f).config();
        }
    }

    /** Asserts that two models compute identical logits, with the same hyper-parameters as moe4j reads them. */
    public static void assertSameModel(Path a, Path b, int[] prompt) {
        if (!config(a).equals(config(b))) throw new AssertionError("hyper-parameters differ: " + config(a) + " vs " + config(b));
        double d = maxAbsDiff(of(a, prompt), of(b, prompt));
        if (d != 0) throw new AssertionError("logits differ by " + d);
    }

    public static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) throw new AssertionError("length " + a.length + " vs " + b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }

    public static double maxAbs(float[] a) {
        double m = 0;
        for (float x : a) m = Math.max(m, Math.abs(x));
        return m;
    }
}
