package io.moe4j.chat;

import io.moe4j.Model;
import io.moe4j.server.jinja.Template;
import io.moe4j.server.jinja.TemplateException;
import io.moe4j.tokenizer.Tokenizer;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a model wants a conversation written: its Jinja chat template ({@code tokenizer.chat_template}, rendered as
 * Hugging Face renders it), or one given in its place.
 *
 * <p>A model without a template gets {@link #FALLBACK}: ChatML ({@code <|im_start|>role\n...<|im_end|>}), the
 * format llama.cpp also falls back to, with tools described Hermes-style and called as
 * {@code <tool_call>{"name": ..., "arguments": ...}</tool_call>}; {@code <|im_end|>} is then also a stop string,
 * since such a model's tokenizer need not know it as an end-of-generation token.
 */
public final class ChatTemplate {
    public static final String FALLBACK = """
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

    private final String source;
    private final Template template;
    private final boolean fallback;
    private final Tokenizer tokenizer;
    private final String bos, eos;

    private ChatTemplate(String source, boolean fallback, Tokenizer tokenizer) {
        this.source = source;
        this.fallback = fallback;
        this.template = Template.compile(source);
        this.tokenizer = tokenizer;
        this.bos = tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "";
        this.eos = tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : "";
    }

    /** The model's own template, or {@code override} (Jinja source) when not null; without either, {@link #FALLBACK}. */
    public static ChatTemplate of(Model model, String override) {
        String t = override;
        if (t == null) t = model.file().metadata().getString("tokenizer.chat_template", null);
        boolean fallback = t == null || t.isBlank();
        return new ChatTemplate(fallback ? FALLBACK : t, fallback, model.tokenizer());
    }

    /** A template from its Jinja source, for a model with {@code tokenizer}. */
    public static ChatTemplate of(String source, Tokenizer tokenizer) {
        return new ChatTemplate(source, false, tokenizer);
    }

    /** Whether this is {@link #FALLBACK} because the model has no template of its own. */
    public boolean isFallback() {
        return fallback;
    }

    public String source() {
        return source;
    }

    /** Whether the tokenizer adds BOS to a rendered prompt (it does when the model asks for it). */
    public boolean addBos() {
        return tokenizer.addBosByDefault();
    }

    /** Stop strings the format needs besides the tokenizer's end-of-generation tokens. */
    public List<String> stopStrings() {
        return fallback ? List.of("<|im_end|>") : List.of();
    }

    /**
     * Renders a template context: {@code variables} ({@code messages}, maybe {@code tools} and template keyword
     * arguments) plus {@code add_generation_prompt}, {@code bos_token} and {@code eos_token}.
     *
     * @throws TemplateException when the template cannot render these variables (a template may raise errors)
     */
    public String render(Map<String, ?> variables, boolean addGenerationPrompt) {
        Map<String, Object> ctx = new LinkedHashMap<>(variables);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bos);
        ctx.put("eos_token", eos);
        String text = template.render(ctx);
        // The tokenizer adds BOS itself; a template that writes it too would double it (llama.cpp strips it too).
        if (addBos() && !bos.isEmpty() && text.startsWith(bos)) text = text.substring(bos.length());
        return text;
    }

    /** Renders {@code messages}; with {@code addGenerationPrompt}, ending where the assistant's answer begins. */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        return render(Map.of("messages", messages.stream().map(Message::toTemplateValue).toList()), addGenerationPrompt);
    }

    /** The tokens of a rendered conversation, as generation feeds them (BOS as the model asks, special tokens parsed). */
    public int[] tokenize(String rendered) {
        return tokenizer.encode(rendered, addBos(), true);
    }
}
