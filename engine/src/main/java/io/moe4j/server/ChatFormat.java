package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.server.jinja.Template;
import io.moe4j.server.jinja.TemplateException;
import io.moe4j.tokenizer.Tokenizer;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a model wants a conversation written: its Jinja chat template ({@code tokenizer.chat_template}, rendered as
 * Hugging Face renders it) and the tool-call syntax it answers in.
 *
 * <p>A model without a template gets {@link #FALLBACK_TEMPLATE}: ChatML ({@code <|im_start|>role\n...<|im_end|>}),
 * the format llama.cpp also falls back to, with tools described Hermes-style and called as
 * {@code <tool_call>{"name": ..., "arguments": ...}</tool_call>}; {@code <|im_end|>} is then also a stop string.
 */
final class ChatFormat {
    static final String FALLBACK_TEMPLATE = """
            {%- if tools %}
                {{- '<|im_start|>system\\n' }}
                {%- if messages[0].role == 'system' %}
                    {{- messages[0].content + '\\n\\n' }}
                {%- endif %}
                {{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
                {%- for tool in tools %}
                    {{- '\\n' + tool | tojson }}
                {%- endfor %}
                {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
            {%- elif messages[0].role == 'system' %}
                {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
            {%- endif %}
            {%- for message in messages %}
                {%- if message.role == 'system' and loop.first %}
                {%- elif message.role == 'assistant' %}
                    {{- '<|im_start|>assistant\\n' + message.content }}
                    {%- for call in message.tool_calls or [] %}
                        {{- '\\n<tool_call>\\n{"name": "' + call.function.name + '", "arguments": ' + call.function.arguments | tojson + '}\\n</tool_call>' }}
                    {%- endfor %}
                    {{- '<|im_end|>\\n' }}
                {%- elif message.role == 'tool' %}
                    {{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
                {%- else %}
                    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
                {%- endif %}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|im_start|>assistant\\n' }}
            {%- endif %}
            """;

    /** The tool-call syntax of a template's model. */
    enum ToolSyntax { HERMES, LLAMA3, MISTRAL, HARMONY }

    private final String source;
    private final Template template;
    private final boolean fallback;
    private final String bos, eos;
    private final boolean addBos;
    final ToolSyntax syntax;
    private final boolean thinking;
    private final boolean developerRole;
    private final boolean shortIds;
    private final SecureRandom random = new SecureRandom();

    private ChatFormat(String source, boolean fallback, Tokenizer tok) {
        this.source = source;
        this.fallback = fallback;
        this.template = Template.compile(source);
        this.bos = tok.bos() >= 0 ? tok.tokenText(tok.bos()) : "";
        this.eos = tok.eos() >= 0 ? tok.tokenText(tok.eos()) : "";
        this.addBos = tok.addBosByDefault();
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
        String t = override;
        if (t == null) t = model.file().metadata().getString("tokenizer.chat_template", null);
        boolean fallback = t == null || t.isBlank();
        return new ChatFormat(fallback ? FALLBACK_TEMPLATE : t, fallback, model.tokenizer());
    }

    /** For tests: a format from template text and a tokenizer. */
    static ChatFormat of(String template, Tokenizer tok) {
        return new ChatFormat(template, false, tok);
    }

    boolean addBos() {
        return addBos;
    }

    boolean isFallback() {
        return fallback;
    }

    String source() {
        return source;
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
        ctx.put("add_generation_prompt", true);
        ctx.put("bos_token", bos);
        ctx.put("eos_token", eos);
        String text;
        try {
            text = template.render(ctx);
        } catch (TemplateException e) {
            throw ApiException.invalid("messages", "invalid_messages", "The model's chat template cannot render these messages: " + e.getMessage());
        }
        // The tokenizer adds BOS itself; a template that writes it too would double it (llama.cpp strips it too).
        if (addBos && !bos.isEmpty() && text.startsWith(bos)) text = text.substring(bos.length());
        String prefill = "";
        if (tools && (syntax == ToolSyntax.HERMES) && req.toolChoice().mode() != Requests.ToolChoiceMode.AUTO) {
            prefill = req.toolChoice().mode() == Requests.ToolChoiceMode.NAMED
                    ? "<tool_call>\n{\"name\": \"" + req.toolChoice().name() + "\", \"arguments\": "
                    : "<tool_call>\n";
        }
        List<String> stops = new ArrayList<>();
        if (fallback) stops.add("<|im_end|>");
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
