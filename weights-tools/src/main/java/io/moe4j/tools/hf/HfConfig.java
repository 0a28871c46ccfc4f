package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.model.Architecture;
import io.moe4j.model.FileLayout;
import io.moe4j.model.arch.Architectures;
import io.moe4j.tools.synth.ModelShape;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * Hugging Face {@code config.json} to and from a {@link ModelShape} (the hyper-parameters llama.cpp keeps), for the
 * supported architectures, with the rope scaling that is not part of the shape.
 */
public final class HfConfig {

    /**
     * Linear rope scaling (yarn lives in the shape); the yarn betas when config.json gives them; Llama 3's rope
     * scaling as {factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}, or null.
     */
    public record Extras(double linearFactor, Double yarnBetaFast, Double yarnBetaSlow, boolean attentionBias, double[] llama3) {
    }

    /** A parsed config.json and the architecture table's entry for its model class. */
    public record Parsed(ModelShape shape, Extras extras, JsonNode json, FileLayout.HfClass hfClass) {
    }

    private HfConfig() {
    }

    public static JsonNode readJson(Path file) {
        try {
            JsonNode n = new ObjectMapper().readTree(file.toFile());
            if (n == null || !n.isObject()) throw new ModelFormatException(file + ": not a JSON object");
            return n;
        } catch (IOException e) {
            throw new ModelFormatException(file + ": malformed JSON: " + e.getMessage());
        }
    }

    public static Parsed read(Path dir) {
        Path f = dir.resolve("config.json");
        if (!Files.isRegularFile(f)) throw new Moe4jException(dir + ": config.json not found (is this a Hugging Face checkpoint folder?)");
        JsonNode c = readJson(f);
        JsonNode archs = c.get("architectures");
        String hfArch = archs != null && archs.isArray() && !archs.isEmpty() ? archs.get(0).asText() : null;
        Architecture architecture = HfLayout.ggufArchitecture(hfArch, text(c, "model_type"));
        String arch = architecture.name();
        FileLayout files = architecture.files();
        FileLayout.Hf hf = files.hf();
        int embd = req(c, f, "hidden_size");
        int heads = req(c, f, "num_attention_heads");
        int kv = integer(c, "num_key_value_heads", heads);
        int headDim = integer(c, "head_dim", embd / heads);
        int layers = req(c, f, "num_hidden_layers");
        int experts = integer(c, hf.expertCountKey(), 0);
        int topK = 0;
        for (String k : hf.topKKeys()) {
            if (topK == 0) topK = integer(c, k, 0);
        }
        int ff = integer(c, "intermediate_size", 0);
        int expertFf = hf.expertFfKey() == null ? 0 : req(c, f, hf.expertFfKey());
        int sharedFf = switch (files.sharedExpert()) {
            case NONE -> 0;
            case GATED -> integer(c, files.sharedExpert().hfKey, 0);
            case COUNTED -> integer(c, files.sharedExpert().hfKey, 0) * expertFf;
        };
        if (files.experts() == FileLayout.Experts.NEVER) {
            experts = 0;
            topK = 0;
        }
        ModelShape.Mla mla = null;
        ModelShape.Routing routing = null;
        if (architecture.attention() == Architecture.AttentionKind.LATENT) {
            JsonNode q = c.get("q_lora_rank");
            int nope = req(c, f, "qk_nope_head_dim"), rope = req(c, f, "qk_rope_head_dim");
            JsonNode rsm = c.path("rope_scaling").path("mscale_all_dim");
            mla = new ModelShape.Mla(q == null || q.isNull() ? 0 : q.asInt(), req(c, f, "kv_lora_rank"), nope, rope,
                    req(c, f, "v_head_dim"), rsm.isNumber() ? 0.1 * rsm.asDouble() : 0);
            headDim = nope + rope;
            String scoring = text(c, "scoring_func");
            if (scoring != null && !scoring.equals("softmax") && !scoring.equals("sigmoid")) {
                throw new ModelFormatException(f + ": scoring_func '" + scoring + "' is not supported (softmax, sigmoid)");
            }
            routing = new ModelShape.Routing(integer(c, "first_k_dense_replace", 0), integer(c, "n_group", 0),
                    integer(c, "topk_group", 0), "sigmoid".equals(scoring), c.path(hf.normTopKKey()).asBoolean(false),
                    number(c, "routed_scaling_factor", 1.0));
        }
        double ropeBase = number(c, "rope_theta", 10000);
        double eps = number(c, "rms_norm_eps", 1e-5);
        int ctx = integer(c, "max_position_embeddings", 4096);
        int window = architecture.slidingWindowPeriod() > 0 ? integer(c, "sliding_window", 0) : 0;
        double yarn = 0, linear = 0;
        double[] llama3 = null;
        int yarnOrig = 0;
        Double betaFast = null, betaSlow = null;
        JsonNode rs = c.get("rope_scaling");
        if (rs != null && rs.isObject()) {
            String type = text(rs, "rope_type");
            if (type == null) type = text(rs, "type");
            double factor = number(rs, "factor", 1);
            switch (type == null ? "" : type) {
                case "yarn" -> {
                    yarn = factor;
                    yarnOrig = integer(rs, "original_max_position_embeddings", ctx);
                    if (rs.has("beta_fast")) betaFast = rs.get("beta_fast").asDouble();
                    if (rs.has("beta_slow")) betaSlow = rs.get("beta_slow").asDouble();
                }
                case "linear" -> linear = factor;
                case "llama3" -> llama3 = new double[]{number(rs, "factor", 8), number(rs, "low_freq_factor", 1),
                        number(rs, "high_freq_factor", 4), number(rs, "original_max_position_embeddings", 8192)};
                case "default", "" -> {
                }
                default -> throw new ModelFormatException(f + ": rope_scaling type '" + type + "' is not supported (linear, yarn, llama3)");
            }
        }
        boolean tied = c.has("tie_word_embeddings") && c.get("tie_word_embeddings").asBoolean();
        int vocab = req(c, f, "vocab_size");
        String name = text(c, "_name_or_path");
        if (name == null || name.isBlank()) name = dir.toAbsolutePath().normalize().getFileName().toString();
        boolean bias = c.has("attention_bias") && c.get("attention_bias").asBoolean();
        ModelShape s = new ModelShape(arch, name, vocab, embd, layers, heads, kv, headDim, ff, experts, topK, expertFf, sharedFf,
                ropeBase, (float) eps, ctx, window, yarn, yarnOrig, tied, mla, routing);
        try {
            s.validate();
        } catch (Moe4jException e) {
            throw new ModelFormatException(f + ": " + e.getMessage());
        }
        return new Parsed(s, new Extras(linear, betaFast, betaSlow, bias, llama3), c, Architectures.hfClass(hfArch, text(c, "model_type")));
    }

    private static String text(JsonNode c, String k) {
        JsonNode v = c.get(k);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static int req(JsonNode c, Path f, String k) {
        JsonNode v = c.get(k);
        if (v == null || !v.isNumber()) throw new ModelFormatException(f + ": '" + k + "' is missing or not a number");
        return v.asInt();
    }

    private static int integer(JsonNode c, String k, int fallback) {
        JsonNode v = c.get(k);
        return v == null || !v.isNumber() ? fallback : v.asInt();
    }

    private static double number(JsonNode c, String k, double fallback) {
        JsonNode v = c.get(k);
        return v == null || !v.isNumber() ? fallback : v.asDouble();
    }

    /** The shape of a GGUF model (for export). */
    public static ModelShape shapeOf(GgufFile f) {
        GgufMetadata md = f.metadata();
        String arch = md.getString("general.architecture");
        Architecture architecture = Architectures.byName(arch, f.path().toString());
        String a = arch + ".";
        int embd = md.getInt(a + "embedding_length");
        int heads = md.getInt(a + "attention.head_count");
        int kv = md.getInt(a + "attention.head_count_kv", heads);
        int headDim = md.getInt(a + "attention.key_length", embd / heads);
        int experts = md.getInt(a + "expert_count", 0);
        int ff = md.getInt(a + "feed_forward_length", 0);
        int expertFf = md.getInt(a + "expert_feed_forward_length", 0);
        int moeLayer = md.getInt(a + "leading_dense_block_count", 0);
        String gateExps = "blk." + moeLayer + ".ffn_gate_exps.weight", gateShexp = "blk." + moeLayer + ".ffn_gate_shexp.weight";
        if (experts > 0 && expertFf == 0 && architecture.files().has(FileLayout.Trait.EXPERT_FF_KEY) && f.tensor(gateExps) != null) {
            expertFf = (int) f.tensor(gateExps).dim(1);
        }
        int sharedFf = switch (architecture.files().sharedExpert()) {
            case COUNTED -> md.getInt(a + "expert_shared_count", 0) * expertFf;
            default -> md.getInt(a + "expert_shared_feed_forward_length", 0);
        };
        if (sharedFf == 0 && f.tensor(gateShexp) != null) sharedFf = (int) f.tensor(gateShexp).dim(1);
        var emb = f.requireTensor("token_embd.weight");
        double yarn = "yarn".equals(md.getString(a + "rope.scaling.type", "none")) ? md.getDouble(a + "rope.scaling.factor") : 0;
        int ctx = md.getInt(a + "context_length", 2048);
        ModelShape.Mla mla = null;
        if (architecture.attention() == Architecture.AttentionKind.LATENT) {
            int rope = md.getInt(a + "rope.dimension_count");
            int keyMla = md.getInt(a + "attention.key_length_mla");
            mla = new ModelShape.Mla(md.getInt(a + "attention.q_lora_rank", 0), md.getInt(a + "attention.kv_lora_rank"),
                    keyMla - rope, rope, md.getInt(a + "attention.value_length_mla"),
                    md.has(a + "rope.scaling.yarn_log_multiplier") ? md.getDouble(a + "rope.scaling.yarn_log_multiplier") : 0);
            // the file's one cached head is the checkpoint's heads of qk_nope + qk_rope
            headDim = keyMla;
            kv = heads;
        }
        ModelShape.Routing routing = null;
        if (md.has(a + "expert_gating_func") || md.has(a + "leading_dense_block_count") || md.has(a + "expert_group_count")) {
            routing = new ModelShape.Routing(moeLayer, md.getInt(a + "expert_group_count", 0), md.getInt(a + "expert_group_used_count", 0),
                    md.getInt(a + "expert_gating_func", 1) == 2, md.getBool(a + "expert_weights_norm", false),
                    md.has(a + "expert_weights_scale") ? md.getDouble(a + "expert_weights_scale") : 1.0);
        }
        return new ModelShape(arch, md.getString("general.name", arch), (int) emb.dim(1), embd, md.getInt(a + "block_count"), heads, kv,
                headDim, ff, experts, md.getInt(a + "expert_used_count", 0), expertFf, sharedFf,
                md.has(a + "rope.freq_base") ? md.getDouble(a + "rope.freq_base") : 10000.0,
                md.getFloat(a + "attention.layer_norm_rms_epsilon", 1e-5f), ctx, md.getInt(a + "attention.sliding_window", 0), yarn,
                yarn > 0 ? md.getInt(a + "rope.scaling.original_context_length", ctx) : 0, f.tensor("output.weight") == null, mla, routing);
    }

    /** The extras of a GGUF model (for export). */
    public static Extras extrasOf(GgufMetadata md) {
        String a = md.getString("general.architecture") + ".";
        String type = md.getString(a + "rope.scaling.type", "none");
        double linear = type.equals("linear") ? md.getDouble(a + "rope.scaling.factor") : 0;
        if (md.has(a + "rope.scale_linear")) linear = md.getDouble(a + "rope.scale_linear");
        Double bf = md.has(a + "rope.scaling.yarn_beta_fast") ? md.getDouble(a + "rope.scaling.yarn_beta_fast") : null;
        Double bs = md.has(a + "rope.scaling.yarn_beta_slow") ? md.getDouble(a + "rope.scaling.yarn_beta_slow") : null;
        return new Extras(linear, bf, bs, false, null);
    }

    /**
     * Llama 3's RoPE frequency factors (the rope_freqs.weight tensor llama.cpp's converter adds), one per pair of
     * the {@code dim} rotated dimensions.
     */
    public static float[] llama3RopeFactors(double[] p, double base, int dim) {
        // in float32 operations, as the converter's torch code computes them
        float factor = (float) p[0], low = (float) p[1], high = (float) p[2], old = (float) p[3];
        float lowWavelen = old / low, highWavelen = old / high;
        float[] out = new float[dim / 2];
        for (int i = 0; i < out.length; i++) {
            float freq = 1.0f / (float) Math.pow((float) base, (float) (2 * i) / dim);
            float wavelen = (float) (2 * Math.PI) / freq;
            if (wavelen < highWavelen) out[i] = 1;
            else if (wavelen > lowWavelen) out[i] = factor;
            else {
                float smooth = (old / wavelen - low) / (high - low);
                out[i] = 1 / ((1 - smooth) / factor + smooth);
            }
        }
        return out;
    }

    /** config.json for a shape, as transformers writes it for the architecture. */
    public static ObjectNode write(ModelShape s, Extras x, String torchDtype, int bos, int eos, boolean sharedGate) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode c = om.createObjectNode();
        Architecture arch = s.architecture();
        FileLayout files = arch.files();
        FileLayout.Hf hf = files.hf();
        FileLayout.HfClass cls = HfLayout.hfClass(s);
        ModelShape.Mla mla = s.mla();
        c.putArray("architectures").add(cls.architecture());
        c.put("model_type", cls.modelType());
        c.put("vocab_size", s.vocab());
        c.put("hidden_size", s.embd());
        c.put("intermediate_size", s.ff());
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("num_key_value_heads", s.kvHeads());
        // DeepSeek's config has no head_dim (llama.cpp's converter would write it as key_length)
        if (mla == null) c.put("head_dim", s.headDim());
        c.put("max_position_embeddings", s.ctx());
        c.put("rms_norm_eps", (double) s.eps());
        c.put("rope_theta", s.ropeBase());
        c.put("tie_word_embeddings", s.tied());
        c.put("hidden_act", "silu");
        if (bos >= 0) c.put("bos_token_id", bos);
        if (eos >= 0) c.put("eos_token_id", eos);
        c.put("torch_dtype", torchDtype);
        if (s.yarnFactor() > 0) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "yarn");
            r.put("factor", s.yarnFactor());
            r.put("original_max_position_embeddings", s.yarnOrigCtx());
            if (x.yarnBetaFast() != null) r.put("beta_fast", x.yarnBetaFast());
            if (x.yarnBetaSlow() != null) r.put("beta_slow", x.yarnBetaSlow());
            if (mla != null && mla.yarnLogMultiplier() != 0) {
                // llama.cpp's yarn_log_multiplier is 0.1 × mscale_all_dim; DeepSeek's configs give mscale the same value
                r.put("mscale", mla.yarnLogMultiplier() / 0.1);
                r.put("mscale_all_dim", mla.yarnLogMultiplier() / 0.1);
            }
        } else if (x.linearFactor() > 0) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "linear");
            r.put("factor", x.linearFactor());
        } else {
            c.putNull("rope_scaling");
        }
        for (Map.Entry<String, Object> e : new TreeMap<>(cls.constants()).entrySet()) c.set(e.getKey(), om.valueToTree(e.getValue()));
        if (s.isMoe()) {
            c.put(hf.expertCountKey(), s.experts());
            for (String k : hf.topKKeys()) c.put(k, s.topK());
            if (hf.normTopKKey() != null) c.put(hf.normTopKKey(), s.normalizeTopK());
            if (hf.expertFfKey() != null) c.put(hf.expertFfKey(), s.expertHidden());
            switch (files.sharedExpert()) {
                case GATED -> c.put(files.sharedExpert().hfKey, s.sharedFf());
                case COUNTED -> c.put(files.sharedExpert().hfKey, s.sharedFf() / s.expertHidden());
                case NONE -> {
                }
            }
        }
        if (arch.slidingWindowPeriod() > 0) {
            c.put("sliding_window", s.slidingWindow());
            ArrayNode lt = c.putArray("layer_types");
            for (int i = 0; i < s.layers(); i++) lt.add(arch.usesSlidingWindow(i) ? "sliding_attention" : "full_attention");
        }
        if (mla != null) {
            if (mla.qLoraRank() > 0) c.put("q_lora_rank", mla.qLoraRank());
            else c.putNull("q_lora_rank");
            c.put("kv_lora_rank", mla.kvLoraRank());
            c.put("qk_nope_head_dim", mla.qkNope());
            c.put("qk_rope_head_dim", mla.qkRope());
            c.put("v_head_dim", mla.vHeadDim());
        }
        ModelShape.Routing r = s.routing();
        if (r != null) {
            c.put("first_k_dense_replace", r.leadingDense());
            c.put("moe_layer_freq", 1);
            if (r.groups() > 0) {
                c.put("n_group", r.groups());
                c.put("topk_group", r.groupsUsed());
            }
            c.put("scoring_func", r.sigmoid() ? "sigmoid" : "softmax");
            // DeepSeek's names: noaux_tc (V3: the selection bias), group_limited_greedy (V2), greedy (V2-Lite)
            c.put("topk_method", r.sigmoid() ? "noaux_tc" : r.groups() > 1 ? "group_limited_greedy" : "greedy");
            c.put("routed_scaling_factor", r.scale());
        }
        return c;
    }
}
