package io.moe4j.tools.quant;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.tools.ModelWriter;
import io.moe4j.tools.Progress;
import io.moe4j.tools.TensorPlan;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rewrites a GGUF file with its weights in another type, as llama-quantize does: same metadata (then
 * {@code general.quantization_version} and {@code general.file_type} set anew, at the end), tensors sorted by name,
 * each tensor's type chosen by {@link TypeRules}, trailing dimensions of size 1 dropped. Tensors that keep their
 * type are copied byte for byte; the others are decoded to floats row by row and encoded in parallel chunks.
 */
public final class Quantizer {
    /** ggml's GGML_QNT_VERSION. */
    public static final int QUANTIZATION_VERSION = 2;

    private Quantizer() {
    }

    /** Options beyond the type rules. */
    public record Settings(TypeRules.Options rules, boolean allowRequantize, int threads, boolean quiet) {
    }

    public static ModelWriter.Result quantize(Path in, Path out, Settings s) {
        if (!Files.isRegularFile(in)) throw new Moe4jException("input model not found: " + in);
        try (GgufFile src = GgufFile.open(in)) {
            return quantize(src, out, s);
        }
    }

    public static ModelWriter.Result quantize(GgufFile src, Path out, Settings s) {
        TypeRules.Options o = s.rules();
        if (o.fileType() == null && o.expertsType() == null) throw new Moe4jException("quantize needs --type or --experts-type");
        var md = src.metadata();
        String arch = md.getString("general.architecture", "");
        int nExpert = md.has(arch + ".expert_count") ? md.getInt(arch + ".expert_count") : 0;
        int nLayer = md.has(arch + ".block_count") ? md.getInt(arch + ".block_count") : 0;

        List<GgufTensor> tensors = new ArrayList<>(src.tensors().values());
        tensors.sort(Comparator.comparing(GgufTensor::name, Quantizer::compareNames));
        List<TypeRules.Tensor> infos = new ArrayList<>();
        for (GgufTensor t : tensors) infos.add(new TypeRules.Tensor(t.name(), trimDims(t.dims()), t.type()));
        TypeRules rules = new TypeRules(o, nExpert, nLayer);
        List<GgmlType> types = rules.plan(infos);

        List<TensorPlan> plans = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++) {
            GgufTensor t = tensors.get(i);
            GgmlType target = types.get(i);
            long[] dims = trimDims(t.dims());
            if (target == t.type()) {
                plans.add(new TensorPlan(t.name(), target, dims, new TensorPlan.Bytes(t.data())));
                continue;
            }
            if (t.type().isQuantized() && !s.allowRequantize()) {
                throw new ModelFormatException(src.path() + ": tensor '" + t.name() + "' is already quantized (" + t.type()
                        + "); requantizing loses accuracy, pass --allow-requantize to do it anyway");
            }
            if (!Codec.canDecode(t.type())) {
                throw new ModelFormatException(src.path() + ": tensor '" + t.name() + "' has type " + t.type()
                        + ", which cannot be read (quantize reads F32, F16, BF16 and, with --allow-requantize, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4)");
            }
            if (dims[0] % target.blockSize != 0) {
                throw new ModelFormatException(src.path() + ": tensor '" + t.name() + "' rows of " + dims[0]
                        + " cannot be stored as " + target + " (block size " + target.blockSize + ")");
            }
            plans.add(new TensorPlan(t.name(), target, dims, rowsOf(t)));
        }

        Map<String, GgufValue> meta = new LinkedHashMap<>(md.asMap());
        for (String k : List.of("general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count")) {
            meta.remove(k);
        }
        meta.put("general.quantization_version", GgufValue.ofU32(QUANTIZATION_VERSION));
        meta.put("general.file_type", GgufValue.ofU32(fileTypeId(o)));

        Progress p = Progress.start("quantize", 0, s.quiet());
        ModelWriter.Result r = ModelWriter.write(out, meta, plans, p, s.threads(), "wrote");
        if (!s.quiet()) {
            for (Map.Entry<String, Integer> e : rules.notes().entrySet()) {
                System.err.println("note: " + e.getValue() + " tensor(s) " + e.getKey());
            }
        }
        return r;
    }

    static int fileTypeId(TypeRules.Options o) {
        if (o.fileType() == null) {
            FileType f = FileType.of(o.expertsType());
            return f == FileType.MXFP4_MOE || f == null ? FileType.MXFP4_MOE.id : f.id;
        }
        if (o.expertsType() == GgmlType.MXFP4 && o.fileType() == FileType.Q8_0) return FileType.MXFP4_MOE.id;
        return o.fileType().id;
    }

    /**
     * llama.cpp's order of tensors (its model loader's weight map): tensors outside the blocks first, then block by
     * block in numeric order, by name within each.
     */
    public static int compareNames(String a, String b) {
        int la = layerOf(a), lb = layerOf(b);
        return la != lb ? Integer.compare(la, lb) : a.compareTo(b);
    }

    /** The n of a "blk.n." name prefix, -1 for other names (as sscanf("blk.%d.") reads it). */
    static int layerOf(String name) {
        if (!name.startsWith("blk.")) return -1;
        int i = 4, v = 0;
        boolean neg = false;
        if (i < name.length() && (name.charAt(i) == '-' || name.charAt(i) == '+')) neg = name.charAt(i++) == '-';
        int start = i;
        while (i < name.length() && Character.isDigit(name.charAt(i)) && i - start < 9) v = v * 10 + (name.charAt(i++) - '0');
        if (i == start) return -1;
        return neg ? -v : v;
    }

    /** ggml_n_dims: trailing dimensions of size 1 are not stored. */
    public static long[] trimDims(long[] dims) {
        int n = dims.length;
        while (n > 1 && dims[n - 1] == 1) n--;
        return java.util.Arrays.copyOf(dims, n);
    }

    /** The rows of a tensor decoded to floats. */
    public static TensorPlan.Rows rowsOf(GgufTensor t) {
        GgmlType type = t.type();
        int cols = Math.toIntExact(t.dims()[0]);
        long rowBytes = type.bytesFor(cols);
        MemorySegment data = t.data();
        return (first, n, dst) -> {
            for (int r = 0; r < n; r++) Codec.decode(type, data, (first + r) * rowBytes, dst, r * cols, cols);
        };
    }

}
