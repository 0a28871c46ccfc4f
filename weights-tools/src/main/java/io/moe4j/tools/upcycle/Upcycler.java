package io.moe4j.tools.upcycle;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.arch.Architectures;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.tools.ModelWriter;
import io.moe4j.tools.Progress;
import io.moe4j.tools.TensorPlan;
import io.moe4j.tools.quant.Quantizer;
import io.moe4j.tools.synth.RandomRows;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sparse upcycling: a dense model becomes a MoE model whose every expert is a copy of the dense FFN of its layer,
 * with a fresh random router. Top-k weights are renormalised (llama, qwen3moe), so without noise the MoE computes
 * exactly the dense model's function. With {@code noise} x, every expert copy gets independent noise of x times
 * the RMS of each row added, so that the experts can diverge when trained.
 *
 * <p>The architecture becomes {@link Architectures#withExperts}'s: llama stays llama (llama.cpp reads Mixtral-style
 * experts from the same architecture); qwen3 becomes qwen3moe.
 */
public final class Upcycler {

    /** What to build. */
    public record Spec(int experts, int topK, double noise, long seed) {
    }

    private Upcycler() {
    }

    public static ModelWriter.Result upcycle(Path in, Path out, Spec spec, int threads, boolean quiet) {
        if (!Files.isRegularFile(in)) throw new Moe4jException("input model not found: " + in);
        try (GgufFile src = GgufFile.open(in)) {
            return upcycle(src, out, spec, threads, quiet);
        }
    }

    public static ModelWriter.Result upcycle(GgufFile src, Path out, Spec spec, int threads, boolean quiet) {
        var md = src.metadata();
        String arch = md.getString("general.architecture");
        Architecture moeArch = Architectures.withExperts(Architectures.byName(arch, src.path().toString()));
        if (moeArch == null) {
            List<String> dense = new ArrayList<>();
            for (Architecture a : Architectures.all()) if (Architectures.withExperts(a) != null) dense.add(a.name());
            throw new ModelFormatException(src.path() + ": upcycle supports dense " + String.join(" and ", dense) + " models, not " + arch);
        }
        String newArch = moeArch.name();
        if (md.has(arch + ".expert_count") && md.getInt(arch + ".expert_count") > 0) {
            throw new ModelFormatException(src.path() + ": the model already has experts (" + arch + ".expert_count = "
                    + md.getInt(arch + ".expert_count") + ")");
        }
        int e = spec.experts(), k = spec.topK();
        if (e < 2) throw new Moe4jException("--experts must be at least 2, got " + e);
        if (k < 1 || k > e) throw new Moe4jException("--top-k must be between 1 and --experts (" + e + "), got " + k);
        if (spec.noise() < 0 || !Double.isFinite(spec.noise())) throw new Moe4jException("--noise must be a non-negative number");
        int nEmbd = md.getInt(arch + ".embedding_length");
        int nLayer = md.getInt(arch + ".block_count");

        int ff = -1;
        List<TensorPlan> plans = new ArrayList<>();
        int index = 0;
        for (GgufTensor t : src.tensors().values()) {
            String name = t.name();
            String kind = ffnKind(name);
            index++;
            if (kind == null) {
                plans.add(new TensorPlan(name, t.type(), t.dims(), new TensorPlan.Bytes(t.data())));
                continue;
            }
            if (t.dims().length != 2) {
                throw new ModelFormatException(src.path() + ": tensor '" + name + "' has shape " + t.shape() + ", expected a matrix");
            }
            int hidden = (int) (kind.equals("down") ? t.dims()[0] : t.dims()[1]);
            if (ff < 0) ff = hidden;
            else if (ff != hidden) throw new ModelFormatException(src.path() + ": FFN sizes differ between layers (" + ff + " and " + hidden + ")");
            String prefix = name.substring(0, name.length() - ("ffn_" + kind + ".weight").length());
            if (kind.equals("gate")) {
                // the router comes first, as convert_hf_to_gguf.py writes MoE layers
                plans.add(new TensorPlan(prefix + "ffn_gate_inp.weight", GgmlType.F32, new long[]{nEmbd, e},
                        new RandomRows(spec.seed(), -1 - layerOf(prefix), nEmbd, 0, 1 / Math.sqrt(nEmbd))));
            }
            long[] dims = {t.dims()[0], t.dims()[1], e};
            String newName = prefix + "ffn_" + kind + "_exps.weight";
            if (spec.noise() == 0) {
                plans.add(new TensorPlan(newName, t.type(), dims, new TensorPlan.Bytes(Collections.nCopies(e, t.data()))));
            } else {
                if (!Codec.canDecode(t.type()) || !Codec.canEncode(t.type())) {
                    throw new ModelFormatException(src.path() + ": cannot add noise to tensor '" + name + "' of type " + t.type());
                }
                plans.add(new TensorPlan(newName, t.type(), dims, noisyCopies(t, spec, index)));
            }
        }
        if (ff < 0) throw new ModelFormatException(src.path() + ": no dense FFN tensors (blk.N.ffn_gate/up/down.weight) found");
        long gates = plans.stream().filter(p -> p.name().endsWith("ffn_gate_inp.weight")).count();
        if (gates != nLayer) throw new ModelFormatException(src.path() + ": found FFN tensors in " + gates + " of " + nLayer + " layers");

        Map<String, GgufValue> meta = new LinkedHashMap<>();
        for (Map.Entry<String, GgufValue> en : md.asMap().entrySet()) {
            String key = en.getKey();
            if (key.startsWith(arch + ".")) key = newArch + key.substring(arch.length());
            meta.put(key, en.getValue());
        }
        meta.put("general.architecture", GgufValue.of(newArch));
        String oldName = md.getString("general.name", "model");
        meta.put("general.name", GgufValue.of(oldName + " upcycled " + e + "x top-" + k));
        meta.put(newArch + ".expert_count", u32(e));
        meta.put(newArch + ".expert_used_count", u32(k));
        if (moeArch.files().has(FileLayout.Trait.EXPERT_FF_KEY)) meta.put(newArch + ".expert_feed_forward_length", u32(ff));
        Progress p = Progress.start("upcycle", 0, quiet);
        return ModelWriter.write(out, meta, plans, p, threads, "wrote");
    }

    /** "gate", "up" or "down" for a dense FFN matrix of a block, else null. */
    static String ffnKind(String name) {
        if (!name.startsWith("blk.")) return null;
        for (String k : new String[]{"gate", "up", "down"}) if (name.endsWith(".ffn_" + k + ".weight")) return k;
        return null;
    }

    private static int layerOf(String prefix) {
        String digits = prefix.substring(4, prefix.length() - 1);
        return Integer.parseInt(digits);
    }

    /** The dense rows repeated once per expert (the expert index is the outer dimension), each copy with its own noise. */
    private static TensorPlan.Rows noisyCopies(GgufTensor t, Spec spec, int tensorIndex) {
        TensorPlan.Rows dense = Quantizer.rowsOf(t);
        int cols = (int) t.dims()[0];
        long rowsPerExpert = t.dims()[1];
        RandomRows noise = new RandomRows(spec.seed() ^ 0x5EEDL, tensorIndex, cols, 0, 1);
        return (first, n, dst) -> {
            float[] z = new float[cols], eps = new float[cols];
            for (int r = 0; r < n; r++) {
                long row = first + r;
                dense.fill(row % rowsPerExpert, 1, z);
                double ss = 0;
                for (int i = 0; i < cols; i++) ss += (double) z[i] * z[i];
                float scale = (float) (spec.noise() * Math.sqrt(ss / cols));
                noise.fill(row, 1, eps);
                int off = r * cols;
                for (int i = 0; i < cols; i++) dst[off + i] = z[i] + scale * eps[i];
            }
        };
    }

    private static GgufValue u32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }
}
