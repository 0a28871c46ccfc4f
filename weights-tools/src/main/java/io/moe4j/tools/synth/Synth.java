package io.moe4j.tools.synth;

import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.kernels.GgmlType;
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
        double residual = 1.0 / Math.sqrt(2.0 * s.layers());
        t.add(new Draft("token_embd.weight", dims(e, s.vocab()), 0, s.tied() ? 1.0 / Math.sqrt(e) : 1.0));
        t.add(norm("output_norm.weight", e));
        if (!s.tied()) t.add(linear("output.weight", e, s.vocab(), 1));
        boolean gptOss = s.arch().equals("gpt-oss");
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            t.add(norm(b + "attn_norm.weight", e));
            t.add(linear(b + "attn_q.weight", e, q, 1));
            t.add(linear(b + "attn_k.weight", e, kv, 1));
            t.add(linear(b + "attn_v.weight", e, kv, 1));
            t.add(linear(b + "attn_output.weight", q, e, residual));
            if (s.arch().equals("qwen2moe") || s.arch().equals("qwen2") || gptOss) {
                t.add(bias(b + "attn_q.bias", q));
                t.add(bias(b + "attn_k.bias", kv));
                t.add(bias(b + "attn_v.bias", kv));
            }
            if (gptOss) {
                t.add(bias(b + "attn_output.bias", e));
                t.add(new Draft(b + "attn_sinks.weight", dims(s.heads()), 0, 1));
            }
            switch (s.arch()) {
                case "qwen3", "qwen3moe" -> {
                    t.add(norm(b + "attn_q_norm.weight", hd));
                    t.add(norm(b + "attn_k_norm.weight", hd));
                }
                case "olmoe" -> {
                    t.add(norm(b + "attn_q_norm.weight", q));
                    t.add(norm(b + "attn_k_norm.weight", kv));
                }
                default -> {
                }
            }
            t.add(norm(b + (gptOss ? "post_attention_norm.weight" : "ffn_norm.weight"), e));
            if (!s.isMoe()) {
                t.add(linear(b + "ffn_gate.weight", e, s.ff(), 1));
                t.add(linear(b + "ffn_up.weight", e, s.ff(), 1));
                t.add(linear(b + "ffn_down.weight", s.ff(), e, residual));
                continue;
            }
            int n = s.experts(), h = s.expertHidden();
            t.add(linear(b + "ffn_gate_inp.weight", e, n, 1));
            if (gptOss) t.add(bias(b + "ffn_gate_inp.bias", n));
            t.add(new Draft(b + "ffn_gate_exps.weight", dims(e, h, n), 0, 1 / Math.sqrt(e)));
            t.add(new Draft(b + "ffn_up_exps.weight", dims(e, h, n), 0, 1 / Math.sqrt(e)));
            t.add(new Draft(b + "ffn_down_exps.weight", dims(h, e, n), 0, residual / Math.sqrt(h)));
            if (gptOss) {
                t.add(new Draft(b + "ffn_gate_exps.bias", dims(h, n), 0, 0.1));
                t.add(new Draft(b + "ffn_up_exps.bias", dims(h, n), 0, 0.1));
                t.add(new Draft(b + "ffn_down_exps.bias", dims(e, n), 0, 0.1));
            }
            if (s.sharedFf() > 0) {
                t.add(new Draft(b + "ffn_gate_inp_shexp.weight", dims(e), 0, 1 / Math.sqrt(e)));
                t.add(linear(b + "ffn_gate_shexp.weight", e, s.sharedFf(), 1));
                t.add(linear(b + "ffn_up_shexp.weight", e, s.sharedFf(), 1));
                t.add(linear(b + "ffn_down_shexp.weight", s.sharedFf(), e, residual));
            }
        }
        return t;
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

    /** The {@code <arch>.*} hyper-parameter keys of a shape, with llama.cpp's names. */
    public static void putHparams(Map<String, GgufValue> md, ModelShape s) {
        String a = s.arch() + ".";
        md.put(a + "block_count", u32(s.layers()));
        md.put(a + "context_length", u32(s.ctx()));
        md.put(a + "embedding_length", u32(s.embd()));
        md.put(a + "feed_forward_length", u32(s.ff()));
        md.put(a + "attention.head_count", u32(s.heads()));
        md.put(a + "attention.head_count_kv", u32(s.kvHeads()));
        md.put(a + "rope.freq_base", GgufValue.ofF32((float) s.ropeBase()));
        md.put(a + "attention.layer_norm_rms_epsilon", GgufValue.ofF32(s.eps()));
        if (s.isMoe()) {
            md.put(a + "expert_count", u32(s.experts()));
            md.put(a + "expert_used_count", u32(s.topK()));
        }
        if (s.headDim() * s.heads() != s.embd() || s.arch().startsWith("qwen3") || s.arch().equals("gpt-oss")) {
            md.put(a + "attention.key_length", u32(s.headDim()));
            md.put(a + "attention.value_length", u32(s.headDim()));
        }
        if (s.isMoe() && s.expertFf() > 0) md.put(a + "expert_feed_forward_length", u32(s.expertFf()));
        if (s.sharedFf() > 0) md.put(a + "expert_shared_feed_forward_length", u32(s.sharedFf()));
        if (s.slidingWindow() > 0) md.put(a + "attention.sliding_window", u32(s.slidingWindow()));
        if (s.yarnFactor() > 0) {
            md.put(a + "rope.scaling.type", GgufValue.of("yarn"));
            md.put(a + "rope.scaling.factor", GgufValue.ofF32((float) s.yarnFactor()));
            md.put(a + "rope.scaling.original_context_length", u32(s.yarnOrigCtx()));
            if (s.arch().equals("gpt-oss")) { // llama.cpp's converter copies gpt-oss's rope_scaling beta_fast/beta_slow
                md.put(a + "rope.scaling.yarn_beta_fast", GgufValue.ofF32(32f));
                md.put(a + "rope.scaling.yarn_beta_slow", GgufValue.ofF32(1f));
            }
        }
        if (s.arch().equals("llama")) {
            md.put(a + "vocab_size", u32(s.vocab()));
            md.put(a + "rope.dimension_count", u32(s.headDim()));
        }
    }

    public static GgufValue u32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }
}
