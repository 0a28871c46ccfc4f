package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.chat.ChatTemplate;
import io.moe4j.server.jinja.TemplateException;
import io.moe4j.tokenizer.Tokenizer;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's {@link ChatTemplate} as the server uses it: conversations of OpenAI's shape, tools, and the tool-call
 * syntax the model answers in (Hermes-style {@code <tool_call>} for the ChatML fallback).
 */
final class ChatFormat {
    /** The tool-call syntax of a template's model. */
    enum ToolSyntax { HERMES, LLAMA3, MISTRAL, HARMONY }

    private final ChatTemplate template;
    final ToolSyntax syntax;
    private final boolean thinking;
    private final boolean developerRole;
    private final boolean shortIds;
    private final SecureRandom random = new SecureRandom();

    private ChatFormat(ChatTemplate template) {
        this.template = template;
        String source = template.source();
        this.syntax = source.contains("<|channel|>") ? ToolSyntax.HARMONY
                : source.contains("[TOOL_CALLS]") ? ToolSyntax.MISTRAL
                : source.contains("<tool_call>") ? ToolSyntax.HERMES
                : source.contains("<|python_tag|>") || source.contains("ipython") ? ToolSyntax.LLAMA3
                : ToolSyntax.HERMES;
        this.thinking = source.contains("<think>");
        this.developerRole = source.contains("developer");
        this.shortIds = source.contains("length != 9");
    }

    /** The model's own template (or {@code override}), else the fallback. */
    static ChatFormat of(Model model, String override) {
        return new ChatFormat(ChatTemplate.of(model, override));
    }

    /** For tests: a format from template text and a tokenizer. */
    static ChatFormat of(String template, Tokenizer tok) {
        return new ChatFormat(ChatTemplate.of(template, tok));
    }

    boolean addBos() {
        return template.addBos();
    }

    /**
     * @param prompt        the text to tokenize (special tokens parsed)
     * @param extraStops    stop strings the format needs
     * @param renderSpecial whether control tokens of the output must appear as text for the parser
     * @param prefill       text appended after the generation prompt (the start of the answer), or ""
     */
    record Rendered(String prompt, List<String> extraStops, boolean renderSpecial, String prefill) {
    }

    Rendered render(Requests.Chat req, ObjectMapper mapper) {
        boolean tools = req.toolChoice().mode() != Requests.ToolChoiceMode.NONE && !req.tools().isEmpty();
        Map<String, Object> ctx = new LinkedHashMap<>(req.templateKwargs());
        ctx.put("messages", messages(req.messages(), mapper));
        if (tools) ctx.put("tools", mapper.convertValue(req.toolsJson(), List.class));
        String text;
        try {
            text = template.render(ctx, true);
        } catch (TemplateException e) {
            throw ApiException.invalid("messages", "invalid_messages", "The model's chat template cannot render these messages: " + e.getMessage());
        }
        String prefill = "";
        if (tools && (syntax == ToolSyntax.HERMES) && req.toolChoice().mode() != Requests.ToolChoiceMode.AUTO) {
            prefill = req.toolChoice().mode() == Requests.ToolChoiceMode.NAMED
                    ? "<tool_call>\n{\"name\": \"" + req.toolChoice().name() + "\", \"arguments\": "
                    : "<tool_call>\n";
        }
        List<String> stops = new ArrayList<>(template.stopStrings());
        boolean renderSpecial = tools || syntax == ToolSyntax.HARMONY || thinking;
        return new Rendered(text + prefill, stops, renderSpecial, prefill);
    }

    /** A parser of the model's answer; {@code prefill} is fed first (it is part of the answer, not shown). */
    ChatOutput output(boolean tools, String prefill) {
        ChatOutput out = switch (syntax) {
            case HARMONY -> new ToolCallParsers.Harmony();
            case MISTRAL -> tools ? new ToolCallParsers.Mistral() : new ToolCallParsers.Hermes(false, thinking, false);
            case LLAMA3 -> tools ? new ToolCallParsers.Llama3() : new ToolCallParsers.Hermes(false, thinking, false);
            case HERMES -> new ToolCallParsers.Hermes(tools, thinking, false);
        };
        if (!prefill.isEmpty()) out.accept(prefill);
        return out;
    }

    /** A tool call id in the form the template accepts back (Mistral wants 9 alphanumerics). */
    String newToolCallId() {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        int n = shortIds ? 9 : 24;
        StringBuilder sb = new StringBuilder(shortIds ? "" : "call_");
        for (int i = 0; i < n; i++) sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return sb.toString();
    }

    /** Messages as the template sees them (OpenAI's shape; tool-call arguments parsed into objects). */
    private List<Object> messages(List<Requests.Message> msgs, ObjectMapper mapper) {
        List<Object> out = new ArrayList<>();
        for (Requests.Message m : msgs) {
            Map<String, Object> o = new LinkedHashMap<>();
            String role = m.role().equals("developer") && !developerRole ? "system" : m.role();
            o.put("role", role);
            o.put("content", m.content() == null ? "" : m.content());
            if (m.name() != null) o.put("name", m.name());
            if (!m.toolCalls().isEmpty()) {
                List<Object> calls = new ArrayList<>();
                for (Requests.ToolCall c : m.toolCalls()) {
                    Map<String, Object> fn = new LinkedHashMap<>();
                    fn.put("name", c.name());
                    JsonNode args = ToolCallParsers.parse(c.arguments());
                    fn.put("arguments", args != null && args.isObject() ? mapper.convertValue(args, Map.class) : c.arguments());
                    Map<String, Object> call = new LinkedHashMap<>();
                    call.put("id", c.id());
                    call.put("type", "function");
                    call.put("function", fn);
                    calls.add(call);
                }
                o.put("tool_calls", calls);
            }
            if (m.toolCallId() != null) o.put("tool_call_id", m.toolCallId());
            out.add(o);
        }
        return out;
    }
}
