package io.moe4j.tools.quant;

import io.moe4j.kernels.GgmlType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Chooses each tensor's type as llama-quantize does for the mixes of {@link FileType}: which tensors are quantized
 * at all (2-D and 3-D weights; not norms, not the router, not the output with --keep-output), and the per-tensor
 * bumps of the mix (output to Q6_K, attn_v and ffn_down of some layers to Q6_K in Q4_K_M, attn_k and attn_v to Q8_0
 * for 8-expert models, MXFP4 only for expert stacks in MXFP4_MOE), then the fallback for row lengths that are not a
 * multiple of the block size. Types that moe4j cannot encode (Q5_K, Q5_0, Q5_1) are replaced by the next larger one
 * it can (Q6_K, Q8_0), which never increases the error; {@link #notes()} lists such replacements.
 *
 * <p>Tensors must be presented in file-writing order (llama-quantize sorts them by name), since the layer counters
 * of attn_v and dense ffn_down advance in that order.
 */
public final class TypeRules {

    /** A tensor as the rules see it: name, ggml dims and current type. */
    public record Tensor(String name, long[] dims, GgmlType type) {
        long ne(int i) {
            return i < dims.length ? dims[i] : 1;
        }

        int nDims() {
            int n = dims.length;
            while (n > 1 && dims[n - 1] == 1) n--;
            return n;
        }
    }

    /** The options of a quantization (null fields: not given). */
    public record Options(FileType fileType, GgmlType expertsType, GgmlType outputType, GgmlType tokenEmbeddingType,
                          boolean pure, boolean keepOutput) {
        public static Options of(FileType t) {
            return new Options(t, null, null, null, false, false);
        }
    }

    enum Category { TOKEN_EMBD, ATTN_Q, ATTN_V, ATTN_K, ATTN_QKV, ATTN_KV_B, ATTN_OUTPUT, FFN_UP, FFN_GATE, FFN_DOWN, OUTPUT, OTHER }

    private static final Pattern LAYER = Pattern.compile("^blk\\.(\\d+)\\.");

    private final Options opt;
    private final int nExpert;
    private final int nLayer;
    private final Map<String, Integer> notes = new TreeMap<>();
    private int nAttentionWv, iAttentionWv, iFfnDown;
    private boolean tied = true;

    public TypeRules(Options opt, int nExpert, int nLayer) {
        this.opt = opt;
        this.nExpert = nExpert;
        this.nLayer = nLayer;
    }

    /** The target type of every tensor, in order. */
    public List<GgmlType> plan(List<Tensor> tensors) {
        for (Tensor t : tensors) {
            Category c = category(t.name);
            if (c == Category.ATTN_V || c == Category.ATTN_QKV || c == Category.ATTN_KV_B) nAttentionWv++;
            if (c == Category.OUTPUT) tied = false;
        }
        List<GgmlType> out = new ArrayList<>(tensors.size());
        for (Tensor t : tensors) out.add(supported(typeOf(t)));
        return out;
    }

    /** Replacements of unsupported types made by the last {@link #plan}, e.g. "Q5_K -> Q6_K" with a count. */
    public Map<String, Integer> notes() {
        return notes;
    }

    /** Whether llama-quantize would quantize this tensor at all. */
    public boolean allowsQuantization(Tensor t) {
        if (t.nDims() < 2) return false;
        String n = t.name;
        if (!n.endsWith("weight")) return false;
        if (n.contains("_norm.weight")) return false;
        if (opt.keepOutput && n.equals("output.weight")) return false;
        for (String s : new String[]{"ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
                "shortconv.conv.weight", "time_mix_", "attn_rel_b.weight", ".position_embd", "position_embd.weight",
                "token_types.weight"}) {
            if (n.contains(s)) return false;
        }
        return true;
    }

    /** Whether the tensor is a stack of routed experts (3-D, more than one expert). */
    public static boolean isExpertStack(Tensor t) {
        return t.ne(2) > 1;
    }

    private GgmlType typeOf(Tensor t) {
        if (!allowsQuantization(t)) return t.type;
        Category cat = category(t.name);
        if (opt.expertsType != null && isExpertStack(t)) return fallback(t, opt.expertsType);
        if (opt.fileType == null) return t.type; // only the experts are converted
        if (opt.tokenEmbeddingType != null && cat == Category.TOKEN_EMBD) return opt.tokenEmbeddingType;
        if (opt.outputType != null && cat == Category.OUTPUT) return opt.outputType;
        GgmlType type = opt.fileType.defaultType;
        if (!type.isQuantized()) return type;
        if (!opt.pure) type = mix(t, type, cat);
        return fallback(t, type);
    }

    private static boolean useMoreBits(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    private GgmlType mix(Tensor t, GgmlType type, Category cat) {
        FileType ft = opt.fileType;
        if (cat == Category.OUTPUT || (tied && cat == Category.TOKEN_EMBD)) {
            if (ft == FileType.MXFP4_MOE) return GgmlType.Q8_0;
            if (t.ne(0) % type.blockSize != 0) return GgmlType.Q8_0;
            return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
        }
        if (ft == FileType.MXFP4_MOE) return isExpertStack(t) ? GgmlType.MXFP4 : GgmlType.Q8_0;
        switch (cat) {
            case ATTN_V, ATTN_QKV, ATTN_KV_B -> {
                if (cat == Category.ATTN_QKV && ft == FileType.Q4_K_M) {
                    type = GgmlType.Q5_K;
                } else if (ft == FileType.Q4_K_M && useMoreBits(iAttentionWv, nAttentionWv)) {
                    type = GgmlType.Q6_K;
                }
                if (nExpert == 8) type = GgmlType.Q8_0;
                iAttentionWv++;
            }
            case ATTN_K -> {
                if (nExpert == 8) type = GgmlType.Q8_0;
            }
            case FFN_DOWN -> {
                int iLayer = iFfnDown;
                if (nExpert > 1) {
                    Matcher m = LAYER.matcher(t.name);
                    if (m.find()) iLayer = Integer.parseInt(m.group(1));
                }
                if (ft == FileType.Q4_K_M && useMoreBits(iLayer, nLayer)) type = GgmlType.Q6_K;
                iFfnDown++;
            }
            case ATTN_OUTPUT -> {
                if (nExpert == 8 && ft == FileType.Q4_K_M) type = GgmlType.Q5_K;
            }
            default -> {
            }
        }
        return type;
    }

    /** llama.cpp's fallback for rows that are not a multiple of the type's block size. */
    private GgmlType fallback(Tensor t, GgmlType type) {
        long ncols = t.ne(0);
        if (ncols % type.blockSize == 0) return type;
        GgmlType r = switch (type) {
            case Q4_K -> GgmlType.Q5_0;
            case Q5_K -> GgmlType.Q5_1;
            case Q6_K -> GgmlType.Q8_0;
            case Q2_K, Q3_K -> GgmlType.Q4_0;
            default -> GgmlType.F16; // llama-quantize has no fallback for block-32 types and stops; moe4j keeps F16
        };
        if (ncols % r.blockSize != 0) r = GgmlType.F16;
        note(type + " -> " + r + " (row length not a multiple of " + type.blockSize + ")");
        return r;
    }

    private GgmlType supported(GgmlType t) {
        GgmlType r = switch (t) {
            case Q5_K -> GgmlType.Q6_K;
            case Q5_0, Q5_1, Q4_1 -> GgmlType.Q8_0;
            default -> t;
        };
        if (r != t) note(t + " -> " + r + " (" + t + " is not supported by moe4j)");
        return r;
    }

    private void note(String s) {
        notes.merge(s, 1, Integer::sum);
    }

    static Category category(String name) {
        if (name.equals("output.weight")) return Category.OUTPUT;
        if (name.equals("token_embd.weight") || name.equals("per_layer_token_embd.weight")) return Category.TOKEN_EMBD;
        if (name.contains("attn_qkv.weight")) return Category.ATTN_QKV;
        if (name.contains("attn_kv_b.weight")) return Category.ATTN_KV_B;
        if (name.contains("attn_v.weight")) return Category.ATTN_V;
        if (name.contains("attn_k.weight")) return Category.ATTN_K;
        if (name.contains("attn_q.weight")) return Category.ATTN_Q;
        if (name.contains("attn_output.weight")) return Category.ATTN_OUTPUT;
        if (name.contains("ffn_up")) return Category.FFN_UP;
        if (name.contains("ffn_gate")) return Category.FFN_GATE;
        if (name.contains("ffn_down")) return Category.FFN_DOWN;
        return Category.OTHER;
    }
}
