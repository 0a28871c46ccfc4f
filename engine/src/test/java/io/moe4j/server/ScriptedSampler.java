package io.moe4j.server;

import io.moe4j.batch.TokenSampler;
import io.moe4j.tokenizer.Tokenizer;

/** A "model" that says a fixed text: it ignores the logits and emits the text's tokens, then end of sequence. */
final class ScriptedSampler implements TokenSampler {
    private final int[] ids;
    private final int eos;
    private int next;

    ScriptedSampler(Tokenizer tok, String text) {
        this.ids = tok.encode(text, false, false);
        this.eos = tok.eos();
    }

    @Override
    public int sample(float[] logits, int[] history, int length) {
        return next < ids.length ? ids[next++] : eos;
    }
}
