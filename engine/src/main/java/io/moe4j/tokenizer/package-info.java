/**
 * Tokenizers read from GGUF metadata, reproducing llama.cpp's tokenization and detokenization exactly:
 * {@link io.moe4j.tokenizer.Tokenizer} (SentencePiece-style and byte-level BPE vocabularies, special tokens,
 * end-of-generation tokens) and {@link io.moe4j.tokenizer.StreamingDecoder} (token-by-token text output that never
 * splits a character).
 */
package io.moe4j.tokenizer;
