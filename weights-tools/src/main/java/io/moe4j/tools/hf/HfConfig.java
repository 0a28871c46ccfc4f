package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.tools.synth.ModelShape;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

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

    /** A parsed config.json. */
    public record Parsed(ModelShape shape, Extras extras, JsonNode json) {
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
        String arch = HfLayout.ggufArchitecture(hfArch, text(c, "model_type"));
        int embd = req(c, f, "hidden_size");
        int heads = req(c, f, "num_attention_heads");
        int kv = integer(c, "num_key_value_heads", heads);
        int headDim = integer(c, "head_dim", embd / heads);
        int layers = req(c, f, "num_hidden_layers");
        int experts = integer(c, "num_local_experts", integer(c, "num_experts", 0));
        int topK = integer(c, "num_experts_per_tok", integer(c, "experts_per_token", 0));
        int ff = integer(c, "intermediate_size", 0);
        int expertFf = switch (arch) {
            case "qwen3moe", "qwen2moe" -> req(c, f, "moe_intermediate_size");
            case "gpt-oss" -> ff;
            default -> 0;
        };
        int sharedFf = arch.equals("qwen2moe") ? integer(c, "shared_expert_intermediate_size", 0) : 0;
        if (!(arch.equals("qwen3moe") || arch.equals("qwen2moe") || arch.equals("olmoe") || arch.equals("gpt-oss") || (arch.equals("llama") && experts > 0))) {
            experts = 0;
            topK = 0;
        }
        double ropeBase = number(c, "rope_theta", 10000);
        double eps = number(c, "rms_norm_eps", 1e-5);
        int ctx = integer(c, "max_position_embeddings", 4096);
        int window = arch.equals("gpt-oss") ? integer(c, "sliding_window", 0) : 0;
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
        ModelShape s = new ModelShape(arch, name, vocab, embd, layers, heads, kv, headDim,
                arch.equals("gpt-oss") ? ff : ff, experts, topK, expertFf, sharedFf, ropeBase, (float) eps, ctx, window, yarn, yarnOrig, tied);
        try {
            s.validate();
        } catch (Moe4jException e) {
            throw new ModelFormatException(f + ": " + e.getMessage());
        }
        return new Parsed(s, new Extras(linear, betaFast, betaSlow, bias, llama3), c);
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
        String a = arch + ".";
        int embd = md.getInt(a + "embedding_length");
        int heads = md.getInt(a + "attention.head_count");
        int kv = md.getInt(a + "attention.head_count_kv", heads);
        int headDim = md.getInt(a + "attention.key_length", embd / heads);
        int experts = md.getInt(a + "expert_count", 0);
        int ff = md.getInt(a + "feed_forward_length", 0);
        int expertFf = md.getInt(a + "expert_feed_forward_length", 0);
        if (experts > 0 && expertFf == 0 && !arch.equals("llama") && !arch.equals("olmoe") && f.tensor("blk.0.ffn_gate_exps.weight") != null) {
            expertFf = (int) f.tensor("blk.0.ffn_gate_exps.weight").dim(1);
        }
        int sharedFf = md.getInt(a + "expert_shared_feed_forward_length", 0);
        if (sharedFf == 0 && f.tensor("blk.0.ffn_gate_shexp.weight") != null) sharedFf = (int) f.tensor("blk.0.ffn_gate_shexp.weight").dim(1);
        var emb = f.requireTensor("token_embd.weight");
        double yarn = "yarn".equals(md.getString(a + "rope.scaling.type", "none")) ? md.getDouble(a + "rope.scaling.factor") : 0;
        int ctx = md.getInt(a + "context_length", 2048);
        return new ModelShape(arch, md.getString("general.name", arch), (int) emb.dim(1), embd, md.getInt(a + "block_count"), heads, kv,
                headDim, ff, experts, md.getInt(a + "expert_used_count", 0), expertFf, sharedFf,
                md.has(a + "rope.freq_base") ? md.getDouble(a + "rope.freq_base") : 10000.0,
                md.getFloat(a + "attention.layer_norm_rms_epsilon", 1e-5f), ctx, md.getInt(a + "attention.sliding_window", 0), yarn,
                yarn > 0 ? md.getInt(a + "rope.scaling.original_context_length", ctx) : 0, f.tensor("output.weight") == null);
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
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.putArray("architectures").add(HfLayout.hfArchitecture(s));
        c.put("model_type", HfLayout.hfModelType(s));
        c.put("vocab_size", s.vocab());
        c.put("hidden_size", s.embd());
        c.put("intermediate_size", s.arch().equals("gpt-oss") ? s.expertHidden() : s.ff());
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("num_key_value_heads", s.kvHeads());
        c.put("head_dim", s.headDim());
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
        } else if (x.linearFactor() > 0) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "linear");
            r.put("factor", x.linearFactor());
        } else {
            c.putNull("rope_scaling");
        }
        switch (s.arch()) {
            case "llama" -> {
                c.put("attention_bias", false);
                c.put("mlp_bias", false);
                if (s.isMoe()) {
                    c.put("num_local_experts", s.experts());
                    c.put("num_experts_per_tok", s.topK());
                    c.put("router_aux_loss_coef", 0.02);
                }
            }
            case "qwen3" -> c.put("attention_bias", false);
            case "qwen2" -> c.put("use_sliding_window", false);
            case "qwen3moe", "qwen2moe", "olmoe" -> {
                c.put("num_experts", s.experts());
                c.put("num_experts_per_tok", s.topK());
                c.put("norm_topk_prob", s.arch().equals("qwen3moe"));
                if (!s.arch().equals("olmoe")) {
                    c.put("moe_intermediate_size", s.expertHidden());
                    c.put("decoder_sparse_step", 1);
                    c.putArray("mlp_only_layers");
                }
                if (s.arch().equals("qwen2moe")) {
                    c.put("shared_expert_intermediate_size", s.sharedFf());
                    c.put("use_sliding_window", false);
                }
                if (s.arch().equals("qwen3moe")) c.put("attention_bias", false);
            }
            case "gpt-oss" -> {
                c.put("num_local_experts", s.experts());
                c.put("num_experts_per_tok", s.topK());
                c.put("experts_per_token", s.topK());
                c.put("sliding_window", s.slidingWindow());
                c.put("attention_bias", true);
                c.put("swiglu_limit", 7.0);
                ArrayNode lt = c.putArray("layer_types");
                for (int i = 0; i < s.layers(); i++) lt.add(i % 2 == 0 ? "sliding_attention" : "full_attention");
            }
            default -> {
            }
        }
        return c;
    }
}
