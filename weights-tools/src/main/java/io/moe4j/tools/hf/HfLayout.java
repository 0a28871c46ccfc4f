package io.moe4j.tools.hf;

import io.moe4j.Moe4jException;
import io.moe4j.tools.synth.ModelShape;

import java.util.ArrayList;
import java.util.List;

/**
 * How the tensors of a Hugging Face checkpoint correspond to the GGUF tensors llama.cpp's convert_hf_to_gguf.py
 * writes, for Llama, Mixtral, Qwen2, Qwen3, Qwen3-MoE, Qwen2-MoE, OLMoE and GPT-OSS. Both directions (convert and export)
 * use the same list of {@link Link}s, so they are inverse by construction.
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
        OSS_DOWN
    }

    /**
     * One GGUF tensor and its HF source.
     *
     * @param heads for PERMUTE: the number of heads of the projection; for STACK and OSS kinds: the number of experts
     */
    public record Link(String gguf, long[] dims, Kind kind, String hf, int heads, int part, boolean optional) {
    }

    /** Which optional tensors the model has. */
    public record Options(boolean qkvBias, boolean outputBias, boolean sharedExpertGate) {
    }

    private HfLayout() {
    }

    /** The HF architecture class of a GGUF architecture. */
    public static String hfArchitecture(ModelShape s) {
        return switch (s.arch()) {
            case "llama" -> s.isMoe() ? "MixtralForCausalLM" : "LlamaForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "qwen3moe" -> "Qwen3MoeForCausalLM";
            case "qwen2moe" -> "Qwen2MoeForCausalLM";
            case "olmoe" -> "OlmoeForCausalLM";
            case "gpt-oss" -> "GptOssForCausalLM";
            default -> throw new Moe4jException("architecture " + s.arch() + " cannot be exported");
        };
    }

    public static String hfModelType(ModelShape s) {
        return switch (s.arch()) {
            case "llama" -> s.isMoe() ? "mixtral" : "llama";
            case "qwen2" -> "qwen2";
            case "qwen3" -> "qwen3";
            case "qwen3moe" -> "qwen3_moe";
            case "qwen2moe" -> "qwen2_moe";
            case "olmoe" -> "olmoe";
            case "gpt-oss" -> "gpt_oss";
            default -> throw new Moe4jException("architecture " + s.arch() + " cannot be exported");
        };
    }

    /** The GGUF architecture of an HF architecture class (config.json "architectures"[0]) or model_type. */
    public static String ggufArchitecture(String hfArch, String modelType) {
        String a = hfArch == null ? "" : hfArch;
        switch (a) {
            case "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM" -> {
                return "llama";
            }
            case "Qwen2ForCausalLM" -> {
                return "qwen2";
            }
            case "Qwen3ForCausalLM" -> {
                return "qwen3";
            }
            case "Qwen3MoeForCausalLM" -> {
                return "qwen3moe";
            }
            case "Qwen2MoeForCausalLM" -> {
                return "qwen2moe";
            }
            case "OlmoeForCausalLM" -> {
                return "olmoe";
            }
            case "GptOssForCausalLM" -> {
                return "gpt-oss";
            }
            default -> {
            }
        }
        String m = modelType == null ? "" : modelType;
        return switch (m) {
            case "llama", "mistral", "mixtral" -> "llama";
            case "qwen2" -> "qwen2";
            case "qwen3" -> "qwen3";
            case "qwen3_moe" -> "qwen3moe";
            case "qwen2_moe" -> "qwen2moe";
            case "olmoe" -> "olmoe";
            case "gpt_oss" -> "gpt-oss";
            default -> throw new Moe4jException("unsupported architecture " + (a.isEmpty() ? "" : a + " ") + "(model_type '" + m
                    + "'): convert supports Llama, Mistral, Mixtral, Qwen2, Qwen3, Qwen3-MoE, Qwen2-MoE, OLMoE and GPT-OSS");
        };
    }

    /** Every tensor of the model, in the order convert writes them. */
    public static List<Link> links(ModelShape s, Options o) {
        List<Link> l = new ArrayList<>();
        int e = s.embd(), q = s.qDim(), kv = s.kvDim();
        boolean llama = s.arch().equals("llama"), oss = s.arch().equals("gpt-oss");
        l.add(direct("token_embd.weight", "model.embed_tokens.weight", e, s.vocab()));
        for (int i = 0; i < s.layers(); i++) {
            String b = "blk." + i + ".", h = "model.layers." + i + ".";
            l.add(direct(b + "attn_norm.weight", h + "input_layernorm.weight", e));
            l.add(llama ? permute(b + "attn_q.weight", h + "self_attn.q_proj.weight", s.heads(), e, q)
                    : direct(b + "attn_q.weight", h + "self_attn.q_proj.weight", e, q));
            l.add(llama ? permute(b + "attn_k.weight", h + "self_attn.k_proj.weight", s.kvHeads(), e, kv)
                    : direct(b + "attn_k.weight", h + "self_attn.k_proj.weight", e, kv));
            l.add(direct(b + "attn_v.weight", h + "self_attn.v_proj.weight", e, kv));
            l.add(direct(b + "attn_output.weight", h + "self_attn.o_proj.weight", q, e));
            if (o.qkvBias()) {
                if (llama) throw new Moe4jException("llama models with attention biases are not supported");
                l.add(direct(b + "attn_q.bias", h + "self_attn.q_proj.bias", q));
                l.add(direct(b + "attn_k.bias", h + "self_attn.k_proj.bias", kv));
                l.add(direct(b + "attn_v.bias", h + "self_attn.v_proj.bias", kv));
            }
            if (o.outputBias()) l.add(direct(b + "attn_output.bias", h + "self_attn.o_proj.bias", e));
            if (oss) l.add(direct(b + "attn_sinks.weight", h + "self_attn.sinks", s.heads()));
            switch (s.arch()) {
                case "qwen3", "qwen3moe" -> {
                    l.add(direct(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", s.headDim()));
                    l.add(direct(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", s.headDim()));
                }
                case "olmoe" -> {
                    l.add(direct(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", q));
                    l.add(direct(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", kv));
                }
                default -> {
                }
            }
            l.add(direct(b + (oss ? "post_attention_norm.weight" : "ffn_norm.weight"), h + "post_attention_layernorm.weight", e));
            if (!s.isMoe()) {
                l.add(direct(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", e, s.ff()));
                l.add(direct(b + "ffn_up.weight", h + "mlp.up_proj.weight", e, s.ff()));
                l.add(direct(b + "ffn_down.weight", h + "mlp.down_proj.weight", s.ff(), e));
                continue;
            }
            int n = s.experts(), f = s.expertHidden();
            if (oss) {
                l.add(direct(b + "ffn_gate_inp.weight", h + "mlp.router.weight", e, n));
                l.add(direct(b + "ffn_gate_inp.bias", h + "mlp.router.bias", n));
                String x = h + "mlp.experts.";
                l.add(new Link(b + "ffn_gate_exps.weight", new long[]{e, f, n}, Kind.OSS_GATE_UP, x + "gate_up_proj", n, 0, false));
                l.add(new Link(b + "ffn_up_exps.weight", new long[]{e, f, n}, Kind.OSS_GATE_UP, x + "gate_up_proj", n, 1, false));
                l.add(new Link(b + "ffn_down_exps.weight", new long[]{f, e, n}, Kind.OSS_DOWN, x + "down_proj", n, 0, false));
                l.add(new Link(b + "ffn_gate_exps.bias", new long[]{f, n}, Kind.OSS_GATE_UP_BIAS, x + "gate_up_proj_bias", n, 0, false));
                l.add(new Link(b + "ffn_up_exps.bias", new long[]{f, n}, Kind.OSS_GATE_UP_BIAS, x + "gate_up_proj_bias", n, 1, false));
                l.add(direct(b + "ffn_down_exps.bias", x + "down_proj_bias", e, n));
                continue;
            }
            boolean mixtral = llama;
            String moe = h + (mixtral ? "block_sparse_moe." : "mlp.");
            l.add(direct(b + "ffn_gate_inp.weight", moe + "gate.weight", e, n));
            String ex = moe + "experts.{e}.";
            l.add(stack(b + "ffn_gate_exps.weight", ex + (mixtral ? "w1.weight" : "gate_proj.weight"), n, e, f));
            l.add(stack(b + "ffn_up_exps.weight", ex + (mixtral ? "w3.weight" : "up_proj.weight"), n, e, f));
            l.add(stack(b + "ffn_down_exps.weight", ex + (mixtral ? "w2.weight" : "down_proj.weight"), n, f, e));
            if (s.sharedFf() > 0) {
                if (o.sharedExpertGate()) {
                    // convert writes the HF [1, n_embd] gate as a ggml [n_embd, 1] matrix
                    l.add(direct(b + "ffn_gate_inp_shexp.weight", h + "mlp.shared_expert_gate.weight", e, 1));
                }
                l.add(direct(b + "ffn_gate_shexp.weight", h + "mlp.shared_expert.gate_proj.weight", e, s.sharedFf()));
                l.add(direct(b + "ffn_up_shexp.weight", h + "mlp.shared_expert.up_proj.weight", e, s.sharedFf()));
                l.add(direct(b + "ffn_down_shexp.weight", h + "mlp.shared_expert.down_proj.weight", s.sharedFf(), e));
            }
        }
        l.add(direct("output_norm.weight", "model.norm.weight", e));
        if (!s.tied()) l.add(direct("output.weight", "lm_head.weight", e, s.vocab()));
        return l;
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
