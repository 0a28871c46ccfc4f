package io.moe4j.tools.hf;

import io.moe4j.Moe4jException;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.arch.Architectures;
import io.moe4j.tools.synth.ModelShape;

import java.util.ArrayList;
import java.util.List;

/**
 * How the tensors of a Hugging Face checkpoint correspond to the GGUF tensors llama.cpp's convert_hf_to_gguf.py
 * writes, for the architectures of {@link Architectures} as their {@link FileLayout}s describe them. Both directions
 * (convert and export) use the same list of {@link Link}s, so they are inverse by construction.
 */
public final class HfLayout {

    /** How the GGUF tensor is made from the HF tensor(s). */
    public enum Kind {
        /** same bytes, dims reversed (HF [out, in] is ggml [in, out]) */
        DIRECT,
        /** llama's q/k projections: rows of each head reordered from halves to interleaved pairs (NORM RoPE) */
        PERMUTE,
        /** one HF matrix per expert ({@code hf} holds "{e}"), stacked into ggml [in, out, experts] */
        STACK,
        /** gpt-oss expert gate (part 0) or up (part 1) rows of gate_up_proj (MXFP4 blocks or a transposed matrix) */
        OSS_GATE_UP,
        /** gpt-oss gate (part 0) or up (part 1) bias from the interleaved gate_up_proj_bias */
        OSS_GATE_UP_BIAS,
        /** gpt-oss expert down projection (MXFP4 blocks or a transposed matrix) */
        OSS_DOWN,
        /**
         * DeepSeek's kv_b_proj (see {@link #kvBShape}): part 0 is attn_k_b, each head's key rows transposed to ggml
         * [qk_nope, kv_lora_rank]; part 1 is attn_v_b, each head's value rows as they are; {@code heads} the heads
         */
        KV_B
    }

    /**
     * One GGUF tensor and its HF source.
     *
     * @param heads for PERMUTE: the number of heads of the projection; for STACK and OSS kinds: the number of experts
     */
    public record Link(String gguf, long[] dims, Kind kind, String hf, int heads, int part, boolean optional) {
    }

    /**
     * Which optional tensors the model has.
     *
     * @param selectionBias the routers' exp_probs_b (DeepSeek-V3's e_score_correction_bias)
     */
    public record Options(boolean qkvBias, boolean outputBias, boolean sharedExpertGate, boolean selectionBias) {
    }

    private HfLayout() {
    }

    /** The HF model class export writes for a shape: the first of the architecture's classes that fits it. */
    public static FileLayout.HfClass hfClass(ModelShape s) {
        return s.files().exportClass(s.isMoe(), s.routing() != null && s.routing().sigmoid());
    }

    /** The GGUF architecture of an HF architecture class (config.json "architectures"[0]) or model_type. */
    public static Architecture ggufArchitecture(String hfArch, String modelType) {
        Architecture a = Architectures.byHfName(hfArch, modelType);
        if (a != null) return a;
        List<String> known = new ArrayList<>();
        for (Architecture x : Architectures.all()) for (FileLayout.HfClass c : x.files().hf().classes()) known.add(c.architecture());
        throw new Moe4jException("unsupported architecture " + (hfArch == null ? "" : hfArch + " ") + "(model_type '" + modelType
                + "'): convert supports " + String.join(", ", known));
    }

    /** Every tensor of the model, in the order convert writes them. */
    public static List<Link> links(ModelShape s, Options o) {
        List<Link> l = new ArrayList<>();
        Architecture arch = s.architecture();
        FileLayout.Hf hf = arch.files().hf();
        int e = s.embd(), q = s.qDim(), kv = s.kvDim();
        boolean permute = arch.files().has(FileLayout.Trait.PERMUTED_QK), fused = hf.experts() == FileLayout.HfExperts.FUSED;
        l.add(direct("token_embd.weight", "model.embed_tokens.weight", e, s.vocab()));
        for (int i = 0; i < s.layers(); i++) {
            String b = "blk." + i + ".", h = "model.layers." + i + ".";
            l.add(direct(b + "attn_norm.weight", h + "input_layernorm.weight", e));
            if (s.mla() != null) {
                latent(l, s, b, h);
            } else {
                l.add(permute ? permute(b + "attn_q.weight", h + "self_attn.q_proj.weight", s.heads(), e, q)
                        : direct(b + "attn_q.weight", h + "self_attn.q_proj.weight", e, q));
                l.add(permute ? permute(b + "attn_k.weight", h + "self_attn.k_proj.weight", s.kvHeads(), e, kv)
                        : direct(b + "attn_k.weight", h + "self_attn.k_proj.weight", e, kv));
                l.add(direct(b + "attn_v.weight", h + "self_attn.v_proj.weight", e, kv));
                l.add(direct(b + "attn_output.weight", h + "self_attn.o_proj.weight", q, e));
            }
            if (o.qkvBias()) {
                if (arch.files().qkvBias() == FileLayout.Bias.NEVER) {
                    throw new Moe4jException(arch.name() + " models with attention biases are not supported");
                }
                l.add(direct(b + "attn_q.bias", h + "self_attn.q_proj.bias", q));
                l.add(direct(b + "attn_k.bias", h + "self_attn.k_proj.bias", kv));
                l.add(direct(b + "attn_v.bias", h + "self_attn.v_proj.bias", kv));
            }
            if (o.outputBias()) l.add(direct(b + "attn_output.bias", h + "self_attn.o_proj.bias", e));
            if (arch.files().has(FileLayout.Trait.GPT_OSS_BIASES)) l.add(direct(b + "attn_sinks.weight", h + "self_attn.sinks", s.heads()));
            switch (arch.qkNorm()) {
                case PER_HEAD -> {
                    l.add(direct(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", s.headDim()));
                    l.add(direct(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", s.headDim()));
                }
                case WHOLE -> {
                    l.add(direct(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", q));
                    l.add(direct(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", kv));
                }
                case NONE -> {
                }
            }
            l.add(direct(b + arch.ffnNormTensor() + ".weight", h + "post_attention_layernorm.weight", e));
            if (!s.isMoeLayer(i)) {
                l.add(direct(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", e, s.ff()));
                l.add(direct(b + "ffn_up.weight", h + "mlp.up_proj.weight", e, s.ff()));
                l.add(direct(b + "ffn_down.weight", h + "mlp.down_proj.weight", s.ff(), e));
                continue;
            }
            int n = s.experts(), f = s.expertHidden();
            FileLayout.HfExperts x = hf.experts();
            String moe = h + x.module;
            l.add(direct(b + "ffn_gate_inp.weight", moe + x.router + ".weight", e, n));
            if (fused) {
                l.add(direct(b + "ffn_gate_inp.bias", moe + x.router + ".bias", n));
                String ex = moe + "experts.";
                l.add(new Link(b + "ffn_gate_exps.weight", new long[]{e, f, n}, Kind.OSS_GATE_UP, ex + x.gate, n, 0, false));
                l.add(new Link(b + "ffn_up_exps.weight", new long[]{e, f, n}, Kind.OSS_GATE_UP, ex + x.up, n, 1, false));
                l.add(new Link(b + "ffn_down_exps.weight", new long[]{f, e, n}, Kind.OSS_DOWN, ex + x.down, n, 0, false));
                l.add(new Link(b + "ffn_gate_exps.bias", new long[]{f, n}, Kind.OSS_GATE_UP_BIAS, ex + x.gate + "_bias", n, 0, false));
                l.add(new Link(b + "ffn_up_exps.bias", new long[]{f, n}, Kind.OSS_GATE_UP_BIAS, ex + x.up + "_bias", n, 1, false));
                l.add(direct(b + "ffn_down_exps.bias", ex + x.down + "_bias", e, n));
                continue;
            }
            if (o.selectionBias()) l.add(direct(b + "exp_probs_b.bias", moe + x.router + ".e_score_correction_bias", n));
            String ex = moe + "experts.{e}.";
            l.add(stack(b + "ffn_gate_exps.weight", ex + x.gate + ".weight", n, e, f));
            l.add(stack(b + "ffn_up_exps.weight", ex + x.up + ".weight", n, e, f));
            l.add(stack(b + "ffn_down_exps.weight", ex + x.down + ".weight", n, f, e));
            if (s.sharedFf() > 0) {
                String sh = h + arch.files().sharedExpert().hfModule;
                if (o.sharedExpertGate()) {
                    // convert writes the HF [1, n_embd] gate as a ggml [n_embd, 1] matrix
                    l.add(direct(b + "ffn_gate_inp_shexp.weight", h + "mlp.shared_expert_gate.weight", e, 1));
                }
                l.add(direct(b + "ffn_gate_shexp.weight", sh + "gate_proj.weight", e, s.sharedFf()));
                l.add(direct(b + "ffn_up_shexp.weight", sh + "up_proj.weight", e, s.sharedFf()));
                l.add(direct(b + "ffn_down_shexp.weight", sh + "down_proj.weight", s.sharedFf(), e));
            }
        }
        l.add(direct("output_norm.weight", "model.norm.weight", e));
        if (!s.tied()) l.add(direct("output.weight", "lm_head.weight", e, s.vocab()));
        return l;
    }

    /** DeepSeek's latent attention; kv_b_proj becomes attn_k_b and attn_v_b as convert_hf_to_gguf.py splits it. */
    private static void latent(List<Link> l, ModelShape s, String b, String h) {
        ModelShape.Mla m = s.mla();
        int e = s.embd(), heads = s.heads();
        String a = h + "self_attn.";
        if (m.qLoraRank() > 0) {
            l.add(direct(b + "attn_q_a.weight", a + "q_a_proj.weight", e, m.qLoraRank()));
            l.add(direct(b + "attn_q_a_norm.weight", a + "q_a_layernorm.weight", m.qLoraRank()));
            l.add(direct(b + "attn_q_b.weight", a + "q_b_proj.weight", m.qLoraRank(), s.qDim()));
        } else {
            l.add(direct(b + "attn_q.weight", a + "q_proj.weight", e, s.qDim()));
        }
        l.add(direct(b + "attn_kv_a_mqa.weight", a + "kv_a_proj_with_mqa.weight", e, m.kvLoraRank() + m.qkRope()));
        l.add(direct(b + "attn_kv_a_norm.weight", a + "kv_a_layernorm.weight", m.kvLoraRank()));
        l.add(new Link(b + "attn_k_b.weight", new long[]{m.qkNope(), m.kvLoraRank(), heads}, Kind.KV_B, a + "kv_b_proj.weight", heads, 0, false));
        l.add(new Link(b + "attn_v_b.weight", new long[]{m.kvLoraRank(), m.vHeadDim(), heads}, Kind.KV_B, a + "kv_b_proj.weight", heads, 1, false));
        l.add(direct(b + "attn_output.weight", a + "o_proj.weight", s.attnOutDim(), e));
    }

    /**
     * The HF kv_b_proj of latent attention, [heads × (qk_nope + v_head), kv_lora_rank]: per head qk_nope rows of the
     * key part, then v_head rows of the value part. attn_k_b holds the key parts transposed, attn_v_b the value parts.
     */
    public static long[] kvBShape(ModelShape s) {
        ModelShape.Mla m = s.mla();
        return new long[]{(long) s.heads() * (m.qkNope() + m.vHeadDim()), m.kvLoraRank()};
    }

    private static Link direct(String gguf, String hf, long... dims) {
        return new Link(gguf, dims, Kind.DIRECT, hf, 0, 0, false);
    }

    private static Link permute(String gguf, String hf, int heads, long... dims) {
        return new Link(gguf, dims, Kind.PERMUTE, hf, heads, 0, false);
    }

    private static Link stack(String gguf, String hfPattern, int experts, long in, long out) {
        return new Link(gguf, new long[]{in, out, experts}, Kind.STACK, hfPattern, experts, 0, false);
    }

    /** The HF row of GGUF row {@code r} of a PERMUTE tensor (rows per head split into halves in HF, pairs in GGUF). */
    public static long permutedSourceRow(long r, long rows, int heads) {
        long hd = rows / heads, half = hd / 2;
        long head = r / hd, within = r % hd;
        long i = within / 2, s = within % 2;
        return head * hd + s * half + i;
    }

    /** The GGUF row holding HF row {@code r} (inverse of {@link #permutedSourceRow}). */
    public static long permutedTargetRow(long r, long rows, int heads) {
        long hd = rows / heads, half = hd / 2;
        long head = r / hd, within = r % hd;
        long s = within / half, i = within % half;
        return head * hd + 2 * i + s;
    }
}
