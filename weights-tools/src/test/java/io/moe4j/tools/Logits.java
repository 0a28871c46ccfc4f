package io.moe4j.tools;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.ops.KvBuffer;
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
            KvCache cache = new KvCache(tf.config(), tokens.length, KvBuffer.Type.F32);
            return tf.forward(tokens, tokens.length, cache, true, null);
        }
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
