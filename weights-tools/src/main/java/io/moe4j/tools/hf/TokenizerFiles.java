package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.gguf.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tokenizer of a Hugging Face folder to and from GGUF's {@code tokenizer.*} metadata, as llama.cpp's converter
 * reads it: SentencePiece ({@code tokenizer.model}, GGUF model "llama") or byte-level BPE ({@code tokenizer.json},
 * GGUF model "gpt2" with its merges and pre-tokenizer name); special token ids from config.json and
 * tokenizer_config.json; the chat template from tokenizer_config.json or chat_template.jinja.
 */
public final class TokenizerFiles {
    /** tokenizer_config.json key where export records llama.cpp's pre-tokenizer name (HF ignores unknown keys). */
    static final String PRE_KEY = "gguf_pre_tokenizer";

    private TokenizerFiles() {
    }

    // ---------------------------------------------------------------- HF -> GGUF

    /**
     * Puts the tokenizer keys of the HF folder into {@code md}; {@code vocabSize} is the embedding's row count,
     * {@code defaultPre} the pre-tokenizer of a byte-level BPE vocabulary whose files do not name one (the model
     * class's, from the architecture table).
     */
    public static void toGguf(Path dir, String defaultPre, JsonNode config, int vocabSize, Map<String, GgufValue> md) {
        Path spm = dir.resolve("tokenizer.model"), tj = dir.resolve("tokenizer.json");
        JsonNode tc = Files.isRegularFile(dir.resolve("tokenizer_config.json")) ? HfConfig.readJson(dir.resolve("tokenizer_config.json")) : null;
        String[] tokens;
        int[] types;
        float[] scores = null;
        String[] merges = null;
        String model, pre;
        int unk = -1;
        Map<String, Integer> byText = new HashMap<>();
        boolean bpe = Files.isRegularFile(tj) && "BPE".equals(HfConfig.readJson(tj).path("model").path("type").asText())
                && !HfConfig.readJson(tj).path("model").path("byte_fallback").asBoolean(false);
        if (bpe) {
            JsonNode root = HfConfig.readJson(tj);
            JsonNode m = root.get("model");
            int n = vocabSize;
            JsonNode vocab = m.get("vocab");
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                var e = it.next();
                n = Math.max(n, e.getValue().asInt() + 1);
            }
            for (JsonNode a : root.path("added_tokens")) n = Math.max(n, a.get("id").asInt() + 1);
            tokens = new String[n];
            types = new int[n];
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                var e = it.next();
                tokens[e.getValue().asInt()] = e.getKey();
                types[e.getValue().asInt()] = SentencePieceModel.NORMAL;
            }
            for (JsonNode a : root.path("added_tokens")) {
                int id = a.get("id").asInt();
                tokens[id] = a.get("content").asText();
                types[id] = a.path("special").asBoolean(false) ? SentencePieceModel.CONTROL : SentencePieceModel.USER_DEFINED;
            }
            for (int i = 0; i < n; i++) {
                if (tokens[i] == null) {
                    tokens[i] = "[PAD" + i + "]";
                    types[i] = SentencePieceModel.UNUSED;
                }
            }
            JsonNode mj = m.get("merges");
            merges = new String[mj == null ? 0 : mj.size()];
            for (int i = 0; i < merges.length; i++) {
                JsonNode x = mj.get(i);
                merges[i] = x.isArray() ? x.get(0).asText() + " " + x.get(1).asText() : x.asText();
            }
            model = "gpt2";
            pre = tc != null && tc.hasNonNull(PRE_KEY) ? tc.get(PRE_KEY).asText() : defaultPre;
        } else if (Files.isRegularFile(spm)) {
            SentencePieceModel sp;
            try {
                sp = SentencePieceModel.parse(Files.readAllBytes(spm), spm.toString());
            } catch (IOException e) {
                throw new Moe4jException("cannot read " + spm + ": " + e.getMessage(), e);
            }
            if (sp.modelType != 2) throw new ModelFormatException(spm + ": SentencePiece model type " + sp.modelType + " is not supported (llama.cpp's 'llama' vocabulary is BPE, type 2)");
            int n = Math.max(vocabSize, sp.pieces.size());
            tokens = new String[n];
            types = new int[n];
            scores = new float[n];
            for (int i = 0; i < n; i++) {
                if (i < sp.pieces.size()) {
                    tokens[i] = sp.pieces.get(i);
                    scores[i] = sp.scores.get(i);
                    types[i] = sp.types.get(i);
                } else {
                    tokens[i] = "[PAD" + i + "]";
                    scores[i] = -10000f;
                    types[i] = SentencePieceModel.UNUSED;
                }
            }
            if (tc != null) {
                JsonNode added = tc.get("added_tokens_decoder");
                if (added != null && added.isObject()) {
                    for (Iterator<Map.Entry<String, JsonNode>> it = added.fields(); it.hasNext(); ) {
                        var e = it.next();
                        int id = Integer.parseInt(e.getKey());
                        if (id < 0 || id >= n) continue;
                        tokens[id] = e.getValue().path("content").asText(tokens[id]);
                        if (types[id] != SentencePieceModel.UNKNOWN) {
                            types[id] = e.getValue().path("special").asBoolean(false) ? SentencePieceModel.CONTROL : SentencePieceModel.USER_DEFINED;
                        }
                    }
                }
            }
            model = "llama";
            pre = "default";
            unk = sp.unkId;
        } else if (Files.isRegularFile(tj)) {
            throw new ModelFormatException(tj + ": tokenizer model '" + HfConfig.readJson(tj).path("model").path("type").asText()
                    + "' with byte fallback is not supported without tokenizer.model (supported: byte-level BPE, SentencePiece tokenizer.model)");
        } else {
            throw new Moe4jException(dir + ": no tokenizer found (tokenizer.json or tokenizer.model)");
        }
        for (int i = tokens.length - 1; i >= 0; i--) byText.put(tokens[i], i);

        md.put("tokenizer.ggml.model", GgufValue.of(model));
        md.put("tokenizer.ggml.pre", GgufValue.of(pre));
        md.put("tokenizer.ggml.tokens", GgufValue.ofArray(tokens));
        if (scores != null) md.put("tokenizer.ggml.scores", GgufValue.ofArray(scores));
        md.put("tokenizer.ggml.token_type", GgufValue.ofArrayI32(types));
        if (merges != null) md.put("tokenizer.ggml.merges", GgufValue.ofArray(merges));
        int bos = specialId(config, tc, "bos", byText), eos = specialId(config, tc, "eos", byText);
        int pad = specialId(config, tc, "pad", byText), sep = specialId(config, tc, "sep", byText);
        if (unk < 0) unk = specialId(config, tc, "unk", byText);
        if (bos >= 0) md.put("tokenizer.ggml.bos_token_id", u32(bos));
        if (eos >= 0) md.put("tokenizer.ggml.eos_token_id", u32(eos));
        if (unk >= 0) md.put("tokenizer.ggml.unknown_token_id", u32(unk));
        if (sep >= 0) md.put("tokenizer.ggml.seperator_token_id", u32(sep));
        if (pad >= 0) md.put("tokenizer.ggml.padding_token_id", u32(pad));
        if (tc != null && tc.has("add_bos_token")) md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(tc.get("add_bos_token").asBoolean()));
        if (tc != null && tc.has("add_eos_token")) md.put("tokenizer.ggml.add_eos_token", GgufValue.ofBool(tc.get("add_eos_token").asBoolean()));
        String template = chatTemplate(dir, tc);
        if (template != null) md.put("tokenizer.chat_template", GgufValue.of(template));
    }

    private static String chatTemplate(Path dir, JsonNode tc) {
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                return Files.readString(jinja);
            } catch (IOException e) {
                throw new Moe4jException("cannot read " + jinja + ": " + e.getMessage(), e);
            }
        }
        if (tc == null || !tc.has("chat_template")) return null;
        JsonNode t = tc.get("chat_template");
        if (t.isTextual()) return t.asText();
        if (t.isArray()) {
            for (JsonNode x : t) if ("default".equals(x.path("name").asText())) return x.path("template").asText();
            if (!t.isEmpty()) return t.get(0).path("template").asText(null);
        }
        return null;
    }

    /** A special token id: config.json's {@code <kind>_token_id}, else tokenizer_config.json's token text looked up. */
    private static int specialId(JsonNode config, JsonNode tc, String kind, Map<String, Integer> byText) {
        JsonNode id = config == null ? null : config.get(kind + "_token_id");
        if (id != null && id.isInt()) return id.asInt();
        if (id != null && id.isArray() && !id.isEmpty()) return id.get(0).asInt();
        if (tc == null) return -1;
        JsonNode t = tc.get(kind + "_token");
        if (t == null || t.isNull()) return -1;
        String text = t.isObject() ? t.path("content").asText() : t.asText();
        Integer i = byText.get(text);
        return i == null ? -1 : i;
    }

    private static GgufValue u32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }

    // ---------------------------------------------------------------- GGUF -> HF

    /** Writes tokenizer files for {@code md} into {@code dir}; returns {bos, eos} ids (-1 when absent). */
    public static int[] fromGguf(GgufMetadata md, Path dir, int ctx) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        String model = md.getString("tokenizer.ggml.model", "");
        String[] tokens = md.getStringArray("tokenizer.ggml.tokens");
        int n = tokens.length;
        int[] types = md.has("tokenizer.ggml.token_type") ? md.getIntArray("tokenizer.ggml.token_type") : new int[n];
        int bos = id(md, "bos", n), eos = id(md, "eos", n), unk = id(md, "unknown", n), pad = id(md, "padding", n), sep = id(md, "seperator", n);
        ObjectNode tc = om.createObjectNode();
        switch (model) {
            case "llama" -> {
                float[] scores = md.has("tokenizer.ggml.scores") ? md.getFloatArray("tokenizer.ggml.scores") : new float[n];
                SentencePieceModel sp = new SentencePieceModel();
                for (int i = 0; i < n; i++) {
                    sp.pieces.add(tokens[i]);
                    sp.scores.add(scores[i]);
                    sp.types.add(types[i] == 0 ? SentencePieceModel.NORMAL : types[i]);
                }
                sp.unkId = unk < 0 ? 0 : unk;
                sp.bosId = bos;
                sp.eosId = eos;
                sp.padId = pad;
                sp.addDummyPrefix = md.getBool("tokenizer.ggml.add_space_prefix", true);
                Files.write(dir.resolve("tokenizer.model"), sp.serialize());
                tc.put("tokenizer_class", "LlamaTokenizer");
                tc.put("legacy", true);
            }
            case "gpt2" -> {
                ObjectNode root = om.createObjectNode();
                root.put("version", "1.0");
                root.putNull("truncation");
                root.putNull("padding");
                ArrayNode added = root.putArray("added_tokens");
                for (int i = 0; i < n; i++) {
                    if (types[i] == SentencePieceModel.CONTROL || types[i] == SentencePieceModel.USER_DEFINED) {
                        ObjectNode a = added.addObject();
                        a.put("id", i);
                        a.put("content", tokens[i]);
                        a.put("single_word", false);
                        a.put("lstrip", false);
                        a.put("rstrip", false);
                        a.put("normalized", false);
                        a.put("special", types[i] == SentencePieceModel.CONTROL);
                    }
                }
                root.putNull("normalizer");
                ObjectNode pt = root.putObject("pre_tokenizer");
                pt.put("type", "ByteLevel");
                pt.put("add_prefix_space", false);
                pt.put("trim_offsets", true);
                pt.put("use_regex", true);
                root.putNull("post_processor");
                ObjectNode dec = root.putObject("decoder");
                dec.put("type", "ByteLevel");
                dec.put("add_prefix_space", true);
                dec.put("trim_offsets", true);
                dec.put("use_regex", true);
                ObjectNode m = root.putObject("model");
                m.put("type", "BPE");
                m.putNull("dropout");
                m.putNull("unk_token");
                m.putNull("continuing_subword_prefix");
                m.putNull("end_of_word_suffix");
                m.put("fuse_unk", false);
                m.put("byte_fallback", false);
                m.put("ignore_merges", false);
                ObjectNode vocab = m.putObject("vocab");
                for (int i = 0; i < n; i++) if (!vocab.has(tokens[i])) vocab.put(tokens[i], i);
                ArrayNode merges = m.putArray("merges");
                if (md.has("tokenizer.ggml.merges")) for (String s : md.getStringArray("tokenizer.ggml.merges")) merges.add(s);
                om.writeValue(dir.resolve("tokenizer.json").toFile(), root);
                tc.put("tokenizer_class", "PreTrainedTokenizerFast");
                tc.put(PRE_KEY, md.getString("tokenizer.ggml.pre", "default"));
            }
            default -> throw new Moe4jException("tokenizer model '" + model + "' cannot be exported (supported: llama, gpt2)");
        }
        ObjectNode decoder = tc.putObject("added_tokens_decoder");
        for (int i = 0; i < n; i++) {
            if (types[i] == SentencePieceModel.CONTROL || types[i] == SentencePieceModel.USER_DEFINED || types[i] == SentencePieceModel.UNKNOWN) {
                ObjectNode a = decoder.putObject(Integer.toString(i));
                a.put("content", tokens[i]);
                a.put("lstrip", false);
                a.put("normalized", false);
                a.put("rstrip", false);
                a.put("single_word", false);
                a.put("special", types[i] != SentencePieceModel.USER_DEFINED);
            }
        }
        tc.put("add_bos_token", md.getBool("tokenizer.ggml.add_bos_token", model.equals("llama")));
        tc.put("add_eos_token", md.getBool("tokenizer.ggml.add_eos_token", false));
        ObjectNode special = om.createObjectNode();
        Map<String, Integer> named = new LinkedHashMap<>();
        named.put("bos_token", bos);
        named.put("eos_token", eos);
        named.put("unk_token", unk);
        named.put("pad_token", pad);
        named.put("sep_token", sep);
        for (Map.Entry<String, Integer> e : named.entrySet()) {
            if (e.getValue() >= 0) {
                tc.put(e.getKey(), tokens[e.getValue()]);
                special.put(e.getKey(), tokens[e.getValue()]);
            }
        }
        tc.put("clean_up_tokenization_spaces", false);
        tc.put("model_max_length", ctx);
        if (md.has("tokenizer.chat_template")) tc.put("chat_template", md.getString("tokenizer.chat_template"));
        om.writeValue(dir.resolve("tokenizer_config.json").toFile(), tc);
        om.writeValue(dir.resolve("special_tokens_map.json").toFile(), special);
        return new int[]{bos, eos, unk, pad, sep};
    }

    private static int id(GgufMetadata md, String kind, int n) {
        String k = "tokenizer.ggml." + kind + "_token_id";
        if (!md.has(k)) return -1;
        long v = md.getLong(k);
        return v >= 0 && v < n ? (int) v : -1;
    }
}
