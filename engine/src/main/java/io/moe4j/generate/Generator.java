package io.moe4j.generate;

import io.moe4j.model.ContextOverflowException;
import io.moe4j.tokenizer.StreamingDecoder;
import io.moe4j.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/** The generation loop: prefill the prompt, then sample, stream and stop, one token at a time. */
public final class Generator {
    private final Tokenizer tokenizer;

    public Generator(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Continues {@code session} after {@code prompt} tokens. {@code onToken} (may be null) sees each token as it
     * is produced; {@code cancelled} (may be null) is polled between tokens.
     *
     * <p>When the context is full, generation stops ({@link StopReason#CONTEXT_FULL}), or with
     * {@link GenerateOptions#contextShift} goes on after a {@link Session#shift} that drops half the tokens after
     * the kept ones (llama.cpp's n_discard = n_left / 2). A prompt that does not fit after the tokens the session
     * holds is an error ({@link ContextOverflowException}), or with context shift is made room for by a shift that
     * drops at least as many; a prompt that does not fit after the kept tokens alone stays an error.
     */
    public GenerationResult generate(Session session, int[] prompt, GenerateOptions options, Consumer<GeneratedToken> onToken,
                                     BooleanSupplier cancelled) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens)");
        if (options.contextShift() && options.keep() >= session.capacity()) {
            throw new IllegalArgumentException("keep " + options.keep() + " must be less than the context size "
                    + session.capacity());
        }
        long t0 = System.nanoTime();
        if (session.length() + prompt.length > session.capacity()) {
            int keep = options.contextShift() ? kept(session, options, session.length()) : session.length();
            if (keep + prompt.length > session.capacity()) {
                throw new ContextOverflowException(session.length(), prompt.length, session.capacity());
            }
            int length = session.length();
            session.shift(keep, Math.max((length - keep) / 2, length + prompt.length - session.capacity()));
        }
        float[] logits = session.feed(prompt);
        long t1 = System.nanoTime();

        Sampler sampler = new Sampler(options.sampling());
        StreamingDecoder decoder = new StreamingDecoder(tokenizer);
        StopStrings stops = new StopStrings(options.stop());
        StringBuilder text = new StringBuilder();
        int[] generated = new int[Math.max(16, Math.min(options.maxTokens(), 1 << 16))];
        int count = 0;
        StopReason reason = null;
        while (reason == null) {
            if (count >= options.maxTokens()) {
                reason = StopReason.MAX_TOKENS;
                break;
            }
            if (cancelled != null && cancelled.getAsBoolean()) {
                reason = StopReason.CANCELLED;
                break;
            }
            int next = sampler.sample(logits, session.tokenBuffer(), session.length());
            if (tokenizer.isEndOfGeneration(next)) {
                reason = StopReason.END_OF_GENERATION;
                break;
            }
            if (count == generated.length) generated = Arrays.copyOf(generated, count * 2);
            generated[count++] = next;
            String piece = stops.accept(decoder.accept(next));
            text.append(piece);
            if (onToken != null) onToken.accept(new GeneratedToken(next, piece, count - 1));
            if (stops.stopped()) {
                reason = StopReason.STOP_STRING;
            } else if (count >= options.maxTokens()) {
                reason = StopReason.MAX_TOKENS;
            } else if (session.length() >= session.capacity() && !options.contextShift()) {
                reason = StopReason.CONTEXT_FULL;
            } else {
                if (session.length() >= session.capacity()) {
                    int keep = kept(session, options, session.length() - 1);
                    session.shift(keep, Math.max(1, (session.length() - keep) / 2));
                }
                logits = session.feed(next);
            }
        }
        String tail = stops.stopped() ? "" : stops.accept(decoder.flush()) + stops.flush();
        if (!tail.isEmpty()) {
            text.append(tail);
            if (onToken != null) onToken.accept(new GeneratedToken(-1, tail, count));
        }
        long t2 = System.nanoTime();
        return new GenerationResult(text.toString(), Arrays.copyOf(generated, count), reason,
                new Timings(prompt.length, t1 - t0, count, t2 - t1));
    }

    /**
     * The tokens at the start of {@code session} that a context shift keeps: {@code options.keep()}, and the BOS
     * token before them when the session starts with one (as llama.cpp adds it to {@code --keep}); at most
     * {@code most} (during generation all but one of the tokens held, so that a shift drops at least one).
     */
    private int kept(Session session, GenerateOptions options, int most) {
        int length = session.length();
        boolean bos = length > 0 && tokenizer.bos() >= 0 && session.tokenBuffer()[0] == tokenizer.bos();
        return Math.max(0, Math.min(options.keep() + (bos ? 1 : 0), most));
    }
}
