package io.moe4j.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The model-output parsers give the same parts however the text is split into streamed pieces. */
class ToolCallParsersTest {
    static ChatOutput.Content content(String s) {
        return new ChatOutput.Content(s);
    }

    static ChatOutput.Reasoning reasoning(String s) {
        return new ChatOutput.Reasoning(s);
    }

    static ChatOutput.Call call(String name, String args) {
        return new ChatOutput.Call(name, args);
    }

    /** Parts with consecutive content (and reasoning) merged. */
    static List<ChatOutput.Part> merged(List<ChatOutput.Part> parts) {
        List<ChatOutput.Part> out = new ArrayList<>();
        for (ChatOutput.Part p : parts) {
            ChatOutput.Part last = out.isEmpty() ? null : out.getLast();
            if (p instanceof ChatOutput.Content c && last instanceof ChatOutput.Content l) out.set(out.size() - 1, content(l.text() + c.text()));
            else if (p instanceof ChatOutput.Reasoning r && last instanceof ChatOutput.Reasoning l) out.set(out.size() - 1, reasoning(l.text() + r.text()));
            else out.add(p);
        }
        return out;
    }

    static List<ChatOutput.Part> run(ChatOutput parser, List<String> pieces) {
        List<ChatOutput.Part> parts = new ArrayList<>();
        for (String p : pieces) parts.addAll(parser.accept(p));
        parts.addAll(parser.finish());
        return merged(parts);
    }

    /** Whole, character by character, and split in two at every position. */
    static void check(Supplier<ChatOutput> parser, String output, ChatOutput.Part... expected) {
        List<ChatOutput.Part> want = List.of(expected);
        assertEquals(want, run(parser.get(), List.of(output)), "whole");
        List<String> chars = new ArrayList<>();
        output.codePoints().forEach(cp -> chars.add(new String(Character.toChars(cp))));
        assertEquals(want, run(parser.get(), chars), "character by character");
        for (int i = 1; i < output.length(); i++) {
            assertEquals(want, run(parser.get(), List.of(output.substring(0, i), output.substring(i))), "split at " + i);
        }
    }

    @Test
    void hermes() {
        check(() -> new ToolCallParsers.Hermes(true, false, false),
                "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                content("Let me check."), call("get_weather", "{\"city\":\"Paris\"}"));
        check(() -> new ToolCallParsers.Hermes(true, false, false),
                "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>",
                call("a", "{}"), call("b", "{\"x\":[1,2]}"));
        check(() -> new ToolCallParsers.Hermes(true, false, false), "<tool_call>{not json}</tool_call>",
                content("<tool_call>{not json}</tool_call>"));
        check(() -> new ToolCallParsers.Hermes(true, false, false), "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": 1}}",
                call("f", "{\"q\":1}"));
        check(() -> new ToolCallParsers.Hermes(false, false, false), "a <tool_call> b", content("a <tool_call> b"));
    }

    @Test
    void qwenThinking() {
        check(() -> new ToolCallParsers.Hermes(false, true, false), "<think>\nThe user says hi.\n</think>\n\nHello!",
                reasoning("\nThe user says hi.\n"), content("Hello!"));
        check(() -> new ToolCallParsers.Hermes(true, true, false),
                "<think>\nneed weather\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"c\": \"P\"}}\n</tool_call>",
                reasoning("\nneed weather\n"), call("w", "{\"c\":\"P\"}"));
        check(() -> new ToolCallParsers.Hermes(false, true, false), "No thinking here.", content("No thinking here."));
    }

    @Test
    void llama3() {
        check(ToolCallParsers.Llama3::new, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
                call("get_weather", "{\"city\":\"Paris\"}"));
        check(ToolCallParsers.Llama3::new, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", call("f", "{}"));
        check(ToolCallParsers.Llama3::new, "  {\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {}}",
                call("a", "{\"x\":1}"), call("b", "{}"));
        check(ToolCallParsers.Llama3::new, "The answer is 42.", content("The answer is 42."));
        check(ToolCallParsers.Llama3::new, "{\"result\": 42}", content("{\"result\": 42}"));
    }

    @Test
    void mistral() {
        check(ToolCallParsers.Mistral::new, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcDEF123\"}]",
                call("get_weather", "{\"city\":\"Paris\"}"));
        check(ToolCallParsers.Mistral::new, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}", call("get_weather", "{\"city\":\"Paris\"}"));
        check(ToolCallParsers.Mistral::new, "Plain answer.", content("Plain answer."));
        check(ToolCallParsers.Mistral::new, "Hmm [TOOL_CALLS] broken", content("Hmm [TOOL_CALLS] broken"));
    }

    @Test
    void harmony() {
        check(ToolCallParsers.Harmony::new,
                "<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant<|channel|>final<|message|>Hello!",
                reasoning("User greets."), content("Hello!"));
        check(ToolCallParsers.Harmony::new,
                "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>",
                reasoning("Need weather."), call("get_weather", "{\"city\":\"Paris\"}"));
        check(ToolCallParsers.Harmony::new,
                "<|start|>assistant to=functions.lookup<|channel|>commentary json<|message|>{\"q\": \"x\"}",
                call("lookup", "{\"q\":\"x\"}"));
        check(ToolCallParsers.Harmony::new, "<|channel|>final<|message|>Just this.<|return|>", content("Just this."));
    }
}
