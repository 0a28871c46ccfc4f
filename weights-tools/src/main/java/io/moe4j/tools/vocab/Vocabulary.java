package io.moe4j.tools.vocab;

import io.moe4j.gguf.GgufValue;

import java.util.Map;

/**
 * A tokenizer as GGUF stores it ({@code tokenizer.ggml.*} keys as llama.cpp's converter writes them).
 *
 * @param model        tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
 * @param pre          tokenizer.ggml.pre (BPE only), or null
 * @param types        llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 * @param merges       BPE merges "left right", or null
 * @param chatTemplate tokenizer.chat_template, or null
 */
public record Vocabulary(String model, String pre, String[] tokens, int[] types, float[] scores, String[] merges,
                         int bos, int eos, int eot, boolean addBos, String chatTemplate) {

    public int size() {
        return tokens.length;
    }

    /** Puts the tokenizer keys into GGUF metadata, in llama.cpp's order. */
    public void putMetadata(Map<String, GgufValue> md) {
        md.put("tokenizer.ggml.model", GgufValue.of(model));
        if (pre != null) md.put("tokenizer.ggml.pre", GgufValue.of(pre));
        md.put("tokenizer.ggml.tokens", GgufValue.ofArray(tokens));
        if (scores != null) md.put("tokenizer.ggml.scores", GgufValue.ofArray(scores));
        md.put("tokenizer.ggml.token_type", GgufValue.ofArrayI32(types));
        if (merges != null) md.put("tokenizer.ggml.merges", GgufValue.ofArray(merges));
        if (bos >= 0) md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(bos));
        if (eos >= 0) md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(eos));
        if (eot >= 0) md.put("tokenizer.ggml.eot_token_id", GgufValue.ofU32(eot));
        md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(addBos));
        if (chatTemplate != null) md.put("tokenizer.chat_template", GgufValue.of(chatTemplate));
    }
}
