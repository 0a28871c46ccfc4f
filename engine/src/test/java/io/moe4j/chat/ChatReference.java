package io.moe4j.chat;

import io.moe4j.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Generator;
import io.moe4j.generate.Session;

import java.util.ArrayList;
import java.util.List;

/**
 * What each turn of a chat must evaluate and answer, worked out without a conversation's cache: every turn renders
 * the whole conversation, tokenizes it and generates from a fresh session. The tokens a cached chat may skip are
 * those the previous turn's session ended with ({@code /reset} in the messages forgets the turns, not the cache).
 */
public final class ChatReference {
    private ChatReference() {
    }

    /**
     * @param rendered  tokens of the rendered conversation, generation prompt included
     * @param newTokens the tokens a chat that keeps its KV cache evaluates for this turn
     */
    public record Turn(int rendered, int newTokens, String answer) {
        public int cached() {
            return rendered - newTokens;
        }
    }

    public static List<Turn> turns(Model model, ChatTemplate template, String system, List<String> userMessages,
                                   GenerateOptions options) {
        List<Message> messages = new ArrayList<>();
        if (system != null) messages.add(Message.system(system));
        List<Turn> turns = new ArrayList<>();
        int[] held = new int[0];
        for (String text : userMessages) {
            if (text.equals("/reset")) {
                messages.subList(system != null ? 1 : 0, messages.size()).clear();
                continue;
            }
            messages.add(Message.user(text));
            int[] tokens = template.tokenize(template.render(messages, true));
            int common = 0;
            while (common < Math.min(tokens.length - 1, held.length) && tokens[common] == held[common]) common++;
            Session fresh = model.newSession(options.contextSize(), options.kvType());
            GenerationResult r = new Generator(model.tokenizer()).generate(fresh, tokens,
                    options.withStop(template.stopStrings()), null, null);
            messages.add(Message.assistant(r.text()));
            turns.add(new Turn(tokens.length, tokens.length - common, r.text()));
            held = fresh.tokens();
        }
        return turns;
    }
}
