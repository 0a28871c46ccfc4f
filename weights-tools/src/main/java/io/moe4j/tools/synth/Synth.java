package io.moe4j.tools.synth;

import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.kernels.GgmlType;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.tools.ModelWriter;
import io.moe4j.tools.Progress;
import io.moe4j.tools.TensorPlan;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.quant.Quantizer;
import io.moe4j.tools.quant.TypeRules;
import io.moe4j.tools.vocab.ByteBpeBuilder;
import io.moe4j.tools.vocab.Vocabulary;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Random-weight models of real shapes, written as GGUF files that llama.cpp and moe4j both load: llama.cpp's
 * metadata keys and tensor names for each architecture, a real byte-level BPE tokenizer, and weights whose scale
 * keeps activations of order one through every layer (linear maps with std 1/sqrt(fan_in); the projections that
 * write into the residual stream further scaled by 1/sqrt(2 * layers); norms 1 + 0.1 t; biases 0.1 t). Tensors are
 * generated and encoded in parallel chunks as they are written, so the heap holds a few chunks, never the model.
 * The file's bytes depend only on the shape, the type and the seed.
 */
public final class Synth {

    /** What to generate. */
    public record Spec(ModelShape shape, FileType fileType, GgmlType expertsType, long seed) {
    }

    /** A tensor before its type is chosen: name, ggml dims and how its values are drawn. */
    record Draft(String name, long[] dims, double mean, double std) {
    }

    private Synth() {
    }

    public static ModelWriter.Result write(Spec spec, Path out, int threads, boolean quiet) {
        ModelShape s = spec.shape().validate();
        List<Draft> drafts = drafts(s);
        List<TypeRules.Tensor> infos = new ArrayList<>();
        for (Draft d : drafts) infos.add(new TypeRules.Tensor(d.name, d.dims, GgmlType.F32));
        TypeRules.Options opt = new TypeRules.Options(spec.fileType(), spec.expertsType(), null, null, false, false);
        List<GgmlType> types = new TypeRules(opt, s.experts(), s.layers()).plan(infos);
        List<TensorPlan> plans = new ArrayList<>();
        for (int i = 0; i < drafts.size(); i++) {
            Draft d = drafts.get(i);
            plans.add(new TensorPlan(d.name, types.get(i), d.dims, new RandomRows(spec.seed(), i, (int) d.dims[0], d.mean, d.std)));
        }
        Map<String, GgufValue> md = metadata(s, spec.fileType() == null ? FileType.F32 : spec.fileType(), spec.expertsType());
        Progress p = Progress.start("synth", 0, quiet);
        return ModelWriter.write(out, md, plans, p, threads, "wrote " + s.name() + " as");
    }

    /** The tensors of a shape, with llama.cpp's names and ggml dims, in a fixed order. */
    static List<Draft> drafts(ModelShape s) {
        List<Draft> t = new ArrayList<>();
        int e = s.embd(), q = s.qDim(), kv = s.kvDim(), hd = s.headDim();
        Architecture arch = s.architecture();
        FileLayout files = arch.files();
        double residual = 1.0 / Math.sqrt(2.0 * s.layers());
        t.add(new Draft("token_embd.weight", dims(e, s.vocab()), 0, s.tied() ? 1.0 / Math.sqrt(e) : 1.0));
        t.add(norm("output_norm.weight", e));
        if (!s.tied()) t.add(linear("output.weight", e, s.vocab(), 1));
        boolean ossBiases = files.has(FileLayout.Trait.GPT_OSS_BIASES);
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            t.add(norm(b + "attn_norm.weight", e));
            if (s.mla() != null) {
                latent(t, s, b, residual);
            } else {
                t.add(linear(b + "attn_q.weight", e, q, 1));
                t.add(linear(b + "attn_k.weight", e, kv, 1));
                t.add(linear(b + "attn_v.weight", e, kv, 1));
                t.add(linear(b + "attn_output.weight", q, e, residual));
            }
            if (files.qkvBias() == FileLayout.Bias.ALWAYS) {
                t.add(bias(b + "attn_q.bias", q));
                t.add(bias(b + "attn_k.bias", kv));
                t.add(bias(b + "attn_v.bias", kv));
            }
            if (ossBiases) {
                t.add(bias(b + "attn_output.bias", e));
                t.add(new Draft(b + "attn_sinks.weight", dims(s.heads()), 0, 1));
            }
            switch (arch.qkNorm()) {
                case PER_HEAD -> {
                    t.add(norm(b + "attn_q_norm.weight", hd));
                    t.add(norm(b + "attn_k_norm.weight", hd));
                }
                case WHOLE -> {
                    t.add(norm(b + "attn_q_norm.weight", q));
                    t.add(norm(b + "attn_k_norm.weight", kv));
                }
                case NONE -> {
                }
            }
            t.add(norm(b + arch.ffnNormTensor() + ".weight", e));
            if (!s.isMoeLayer(l)) {
                t.add(linear(b + "ffn_gate.weight", e, s.ff(), 1));
                t.add(linear(b + "ffn_up.weight", e, s.ff(), 1));
                t.add(linear(b + "ffn_down.weight", s.ff(), e, residual));
                continue;
            }
            int n = s.experts(), h = s.expertHidden();
            t.add(linear(b + "ffn_gate_inp.weight", e, n, 1));
            if (ossBiases) t.add(bias(b + "ffn_gate_inp.bias", n));
            // the selection bias only orders the experts: of the order of the sigmoid scores' spread
            if (s.routing() != null && s.routing().sigmoid()) t.add(new Draft(b + "exp_probs_b.bias", dims(n), 0, 0.1));
            t.add(new Draft(b + "ffn_gate_exps.weight", dims(e, h, n), 0, 1 / Math.sqrt(e)));
            t.add(new Draft(b + "ffn_up_exps.weight", dims(e, h, n), 0, 1 / Math.sqrt(e)));
            t.add(new Draft(b + "ffn_down_exps.weight", dims(h, e, n), 0, residual / Math.sqrt(h)));
            if (ossBiases) {
                t.add(new Draft(b + "ffn_gate_exps.bias", dims(h, n), 0, 0.1));
                t.add(new Draft(b + "ffn_up_exps.bias", dims(h, n), 0, 0.1));
                t.add(new Draft(b + "ffn_down_exps.bias", dims(e, n), 0, 0.1));
            }
            if (s.sharedFf() > 0) {
                if (files.sharedExpert() == FileLayout.SharedExpert.GATED) {
                    t.add(new Draft(b + "ffn_gate_inp_shexp.weight", dims(e), 0, 1 / Math.sqrt(e)));
                }
                t.add(linear(b + "ffn_gate_shexp.weight", e, s.sharedFf(), 1));
                t.add(linear(b + "ffn_up_shexp.weight", e, s.sharedFf(), 1));
                t.add(linear(b + "ffn_down_shexp.weight", s.sharedFf(), e, residual));
            }
        }
        return t;
    }

    /** The latent attention's tensors, in llama.cpp's order (attn_k_b and attn_v_b: kv_b_proj split per head). */
    private static void latent(List<Draft> t, ModelShape s, String b, double residual) {
        ModelShape.Mla m = s.mla();
        int e = s.embd(), heads = s.heads();
        if (m.qLoraRank() > 0) {
            t.add(linear(b + "attn_q_a.weight", e, m.qLoraRank(), 1));
            t.add(norm(b + "attn_q_a_norm.weight", m.qLoraRank()));
            t.add(linear(b + "attn_q_b.weight", m.qLoraRank(), s.qDim(), 1));
        } else {
            t.add(linear(b + "attn_q.weight", e, s.qDim(), 1));
        }
        t.add(linear(b + "attn_kv_a_mqa.weight", e, m.kvLoraRank() + m.qkRope(), 1));
        t.add(norm(b + "attn_kv_a_norm.weight", m.kvLoraRank()));
        // per head: k_b maps the latent to qk_nope (stored transposed, rows of qk_nope), v_b the latent to the value
        t.add(new Draft(b + "attn_k_b.weight", dims(m.qkNope(), m.kvLoraRank(), heads), 0, 1 / Math.sqrt(m.kvLoraRank())));
        t.add(new Draft(b + "attn_v_b.weight", dims(m.kvLoraRank(), m.vHeadDim(), heads), 0, 1 / Math.sqrt(m.kvLoraRank())));
        t.add(linear(b + "attn_output.weight", s.attnOutDim(), e, residual));
    }

    private static long[] dims(long... d) {
        return d;
    }

    private static Draft norm(String name, int n) {
        return new Draft(name, dims(n), 1.0, 0.1);
    }

    private static Draft bias(String name, int n) {
        return new Draft(name, dims(n), 0, 0.1);
    }

    private static Draft linear(String name, int in, int out, double gain) {
        return new Draft(name, dims(in, out), 0, gain / Math.sqrt(in));
    }

    /** llama.cpp's metadata for the shape, as convert_hf_to_gguf.py writes it, and the tokenizer. */
    public static Map<String, GgufValue> metadata(ModelShape s, FileType fileType, GgmlType expertsType) {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("general.architecture", GgufValue.of(s.arch()));
        md.put("general.type", GgufValue.of("model"));
        md.put("general.name", GgufValue.of(s.name() + " (random weights, moe4j synth)"));
        putHparams(md, s);
        md.put("general.file_type", u32(fileType == FileType.Q8_0 && expertsType == GgmlType.MXFP4 ? FileType.MXFP4_MOE.id : fileType.id));
        md.put("general.quantization_version", u32(Quantizer.QUANTIZATION_VERSION));
        Vocabulary v = ByteBpeBuilder.build(s.vocab());
        v.putMetadata(md);
        return md;
    }

    /** The {@code <arch>.*} hyper-parameter keys of a shape, with llama.cpp's names, in convert_hf_to_gguf.py's order. */
    public static void putHparams(Map<String, GgufValue> md, ModelShape s) {
        FileLayout files = s.files();
        ModelShape.Mla mla = s.mla();
        ModelShape.Routing routing = s.routing();
        String a = s.arch() + ".";
        md.put(a + "block_count", u32(s.layers()));
        md.put(a + "context_length", u32(s.ctx()));
        md.put(a + "embedding_length", u32(s.embd()));
        md.put(a + "feed_forward_length", u32(s.ff()));
        md.put(a + "attention.head_count", u32(s.heads()));
        // latent attention caches one row for all heads, as one key/value head
        md.put(a + "attention.head_count_kv", u32(mla != null ? 1 : s.kvHeads()));
        if (mla != null) putYarn(md, s);
        md.put(a + "rope.freq_base", GgufValue.ofF32((float) s.ropeBase()));
        md.put(a + "attention.layer_norm_rms_epsilon", GgufValue.ofF32(s.eps()));
        if (s.isMoe()) {
            md.put(a + "expert_count", u32(s.experts()));
            md.put(a + "expert_used_count", u32(s.topK()));
        }
        if (routing != null) {
            if (routing.groups() > 0) {
                md.put(a + "expert_group_count", u32(routing.groups()));
                md.put(a + "expert_group_used_count", u32(routing.groupsUsed()));
            }
            // llama.cpp's llama_expert_gating_func_type: 1 softmax, 2 sigmoid
            md.put(a + "expert_gating_func", u32(routing.sigmoid() ? 2 : 1));
            md.put(a + "leading_dense_block_count", u32(routing.leadingDense()));
        }
        if (mla != null) {
            md.put(a + "vocab_size", u32(s.vocab()));
            if (mla.qLoraRank() > 0) md.put(a + "attention.q_lora_rank", u32(mla.qLoraRank()));
            md.put(a + "attention.kv_lora_rank", u32(mla.kvLoraRank()));
            md.put(a + "attention.key_length", u32(mla.kvLoraRank() + mla.qkRope()));
            md.put(a + "attention.value_length", u32(mla.kvLoraRank()));
            md.put(a + "attention.key_length_mla", u32(mla.qkNope() + mla.qkRope()));
            md.put(a + "attention.value_length_mla", u32(mla.vHeadDim()));
        } else if (s.headDim() * s.heads() != s.embd() || files.has(FileLayout.Trait.HEAD_SIZE_KEYS)) {
            md.put(a + "attention.key_length", u32(s.headDim()));
            md.put(a + "attention.value_length", u32(s.headDim()));
        }
        if (s.isMoe() && s.expertFf() > 0) md.put(a + "expert_feed_forward_length", u32(s.expertFf()));
        if (s.sharedFf() > 0) {
            switch (files.sharedExpert()) {
                case GATED -> md.put(a + "expert_shared_feed_forward_length", u32(s.sharedFf()));
                case COUNTED -> md.put(a + "expert_shared_count", u32(s.sharedFf() / s.expertHidden()));
                case NONE -> throw new IllegalStateException(s.arch() + " has no shared expert");
            }
        }
        if (routing != null) {
            md.put(a + "expert_weights_scale", GgufValue.ofF32((float) routing.scale()));
            if (routing.normalize()) md.put(a + "expert_weights_norm", GgufValue.ofBool(true));
        }
        if (s.slidingWindow() > 0) md.put(a + "attention.sliding_window", u32(s.slidingWindow()));
        if (mla == null) putYarn(md, s);
        if (mla != null) {
            md.put(a + "rope.dimension_count", u32(mla.qkRope()));
            if (s.yarnFactor() > 0) md.put(a + "rope.scaling.yarn_log_multiplier", GgufValue.ofF32((float) mla.yarnLogMultiplier()));
        } else if (files.has(FileLayout.Trait.VOCAB_SIZE_KEYS)) {
            md.put(a + "vocab_size", u32(s.vocab()));
            md.put(a + "rope.dimension_count", u32(s.headDim()));
        }
    }

    private static void putYarn(Map<String, GgufValue> md, ModelShape s) {
        if (s.yarnFactor() <= 0) return;
        String a = s.arch() + ".";
        md.put(a + "rope.scaling.type", GgufValue.of("yarn"));
        md.put(a + "rope.scaling.factor", GgufValue.ofF32((float) s.yarnFactor()));
        md.put(a + "rope.scaling.original_context_length", u32(s.yarnOrigCtx()));
        if (s.files().has(FileLayout.Trait.YARN_BETAS)) { // llama.cpp's converter copies rope_scaling's beta_fast / beta_slow
            md.put(a + "rope.scaling.yarn_beta_fast", GgufValue.ofF32(32f));
            md.put(a + "rope.scaling.yarn_beta_slow", GgufValue.ofF32(1f));
        }
    }

    public static GgufValue u32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }
}
