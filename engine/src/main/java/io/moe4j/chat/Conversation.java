package io.moe4j.chat;

import io.moe4j.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GeneratedToken;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Generator;
import io.moe4j.generate.Session;
import io.moe4j.kernels.KvType;
import io.moe4j.model.ContextOverflowException;
import io.moe4j.Moe4jException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * A multi-turn chat with a model, in its chat template, over one {@link Session} that lives as long as the
 * conversation: each turn evaluates only the tokens the session does not hold yet.
 *
 * <p>Each turn renders the whole conversation (with the generation prompt), tokenizes it, keeps the longest prefix
 * the session already holds and feeds the rest. Templates that render earlier turns differently once the
 * conversation goes on (Qwen3 drops earlier answers' thinking, for one) cost only the tokens from the first
 * difference on; an answer is written back the way the template writes it, not as the sampled token ids.
 *
 * <pre>{@code
 * try (var model = Model.load(path)) {
 *     var chat = new Conversation(model, ChatTemplate.of(model, null), "You are terse.", 0, KvType.F16);
 *     chat.reply("Hi!", GenerateOptions.defaults(), t -> System.out.print(t.text()), null);
 * }
 * }</pre>
 * A conversation is used by one thread at a time.
 */
public final class Conversation implements AutoCloseable {
    private final ChatTemplate template;
    private final Generator generator;
    private final Session session;
    private final String systemPrompt;
    private final List<Message> messages = new ArrayList<>();

    /**
     * @param systemPrompt the system message opening the conversation, or null for none
     * @param contextSize  the session's capacity in tokens (0: the model's default)
     */
    public Conversation(Model model, ChatTemplate template, String systemPrompt, int contextSize,
                        KvType kvType) {
        this.template = template;
        this.generator = new Generator(model.tokenizer());
        this.session = model.newSession(contextSize, kvType);
        this.systemPrompt = systemPrompt == null || systemPrompt.isEmpty() ? null : systemPrompt;
        reset();
    }

    /**
     * One turn's outcome.
     *
     * @param reusedTokens tokens of the rendered conversation the session already held (not evaluated again)
     * @param result       the answer; its timings count only the tokens evaluated for this turn
     */
    public record Reply(GenerationResult result, int reusedTokens) {
        public String text() {
            return result.text();
        }
    }

    /**
     * Adds the user's message and generates the answer, streaming it to {@code onToken} (may be null) and stopping
     * early when {@code cancelled} (may be null) turns true. The answer joins the conversation as far as it got,
     * cancelled or cut by the context included. {@code options}' stop strings are joined by the template's;
     * its context size and KV type are the conversation's, not the options'. With
     * {@link GenerateOptions#contextShift}, a full context drops the oldest tokens after the kept ones instead
     * (during the answer, or before this message is evaluated), and the conversation goes on over what is left.
     *
     * @throws ContextFullException when the conversation with this message leaves no room for an answer in the
     *                              context; the conversation is left as it was
     * @throws io.moe4j.server.jinja.TemplateException when the template cannot render the conversation (it is left
     *                              as it was)
     */
    public Reply reply(String userMessage, GenerateOptions options, Consumer<GeneratedToken> onToken, BooleanSupplier cancelled) {
        List<Message> next = new ArrayList<>(messages);
        next.add(Message.user(userMessage));
        int[] tokens = template.tokenize(template.render(next, true));
        if (!options.contextShift() && tokens.length >= session.capacity()) {
            throw new ContextFullException(tokens.length, session.capacity());
        }
        // The session's history is the conversation as rendered so far, those tokens a context shift dropped
        // included: the new part starts where the rendering departs from it. Generation needs at least one token
        // evaluated for the logits of the next.
        int from = session.rewindHistory(Math.min(commonPrefix(tokens, session.history()), tokens.length - 1));
        int reused = session.length();
        int[] rest = Arrays.copyOfRange(tokens, from, tokens.length);
        List<String> stops = new ArrayList<>(options.stop());
        stops.addAll(template.stopStrings());
        GenerationResult result;
        try {
            result = generator.generate(session, rest, options.withStop(stops), onToken, cancelled);
        } catch (ContextOverflowException e) {
            // with context shift: the new part does not fit even after the tokens kept alone
            throw new ContextFullException(rest.length, session.capacity(), options.keep());
        }
        next.add(Message.assistant(result.text()));
        messages.clear();
        messages.addAll(next);
        return new Reply(result, reused);
    }

    /** Forgets every turn; the system prompt stays (its tokens stay cached, too). */
    public void reset() {
        messages.clear();
        if (systemPrompt != null) messages.add(Message.system(systemPrompt));
    }

    /** The conversation so far, system prompt first. */
    public List<Message> messages() {
        return List.copyOf(messages);
    }

    /** Gives the conversation's KV pages back to the model's pool. */
    @Override
    public void close() {
        session.close();
    }

    /** Tokens the session holds: the conversation as evaluated so far. */
    public int cachedTokens() {
        return session.length();
    }

    public int contextSize() {
        return session.capacity();
    }

    public ChatTemplate template() {
        return template;
    }

    /** The conversation with its next message is {@code tokens} long, the context holds {@code capacity}. */
    public static final class ContextFullException extends Moe4jException {
        public ContextFullException(int tokens, int capacity) {
            super("the conversation with this message is " + tokens + " tokens, the context holds " + capacity
                    + ": no room is left for an answer");
        }

        /** With context shift: the {@code newTokens} of the next turn do not fit after the {@code keep} tokens kept. */
        public ContextFullException(int newTokens, int capacity, int keep) {
            super("this message adds " + newTokens + " tokens to the conversation, more than the context of " + capacity
                    + " holds after the " + keep + " kept ones (--keep)");
        }
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
