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
     */
    public GenerationResult generate(Session session, int[] prompt, GenerateOptions options, Consumer<GeneratedToken> onToken,
                                     BooleanSupplier cancelled) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens)");
        if (session.length() + prompt.length > session.capacity()) {
            throw new ContextOverflowException(session.length(), prompt.length, session.capacity());
        }
        long t0 = System.nanoTime();
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
            } else if (session.length() >= session.capacity()) {
                reason = StopReason.CONTEXT_FULL;
            } else {
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
}
