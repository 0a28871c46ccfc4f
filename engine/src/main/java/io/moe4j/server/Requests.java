package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.generate.SamplingOptions;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/** Parses and validates the JSON bodies of the OpenAI endpoints. Unknown fields are ignored, as OpenAI does. */
final class Requests {
    private static final Pattern TOOL_NAME = Pattern.compile("[a-zA-Z0-9_-]{1,64}");
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");
    static final int MAX_STOP = 16;

    private Requests() {
    }

    /** Generation parameters shared by chat and completions. {@code maxTokens} null: up to the context's end. */
    record Generation(Integer maxTokens, SamplingOptions sampling, List<String> stop, boolean stream, boolean includeUsage,
                      int topLogprobs, boolean json, String user) {
    }

    record ToolCall(String id, String name, String arguments) {
    }

    /** A validated chat message; {@code content} may be null for an assistant message with tool calls. */
    record Message(String role, String content, String name, List<ToolCall> toolCalls, String toolCallId) {
    }

    record Tool(String name, String description, JsonNode parameters) {
    }

    enum ToolChoiceMode { NONE, AUTO, REQUIRED, NAMED }

    record ToolChoice(ToolChoiceMode mode, String name) {
        static final ToolChoice AUTO = new ToolChoice(ToolChoiceMode.AUTO, null);
        static final ToolChoice NONE = new ToolChoice(ToolChoiceMode.NONE, null);
    }

    record Chat(String model, List<Message> messages, List<Tool> tools, JsonNode toolsJson, ToolChoice toolChoice,
                Map<String, Object> templateKwargs, Generation gen) {
    }

    /** A completion prompt: text, or token ids. */
    record Completion(String model, String prompt, int[] promptTokens, boolean echo, Generation gen) {
    }

    static String model(Fields f) {
        String m = f.string("model");
        if (m == null) {
            throw ApiException.invalid("model", "missing_required_parameter", "you must provide a model parameter");
        }
        return m;
    }

    static Chat chat(JsonNode body, int contextSize, ObjectMapper mapper) {
        Fields f = Fields.of(body, "");
        String model = model(f);
        JsonNode msgs = f.raw("messages");
        if (msgs == null) throw ApiException.missing("messages");
        if (!msgs.isArray()) throw ApiException.invalidType("messages", "an array", Fields.describe(msgs));
        if (msgs.isEmpty()) {
            throw ApiException.invalid("messages", "empty_array",
                    "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.");
        }
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < msgs.size(); i++) messages.add(message(msgs.get(i), "messages[" + i + "]"));

        List<Tool> tools = List.of();
        JsonNode toolsJson = f.array("tools");
        if (toolsJson != null) tools = tools(toolsJson);
        ToolChoice choice = toolChoice(f.raw("tool_choice"), tools);
        f.bool("parallel_tool_calls");

        Map<String, Object> kwargs = new LinkedHashMap<>();
        JsonNode ctk = f.object("chat_template_kwargs");
        if (ctk != null) {
            ctk.properties().forEach(e -> kwargs.put(e.getKey(), mapper.convertValue(e.getValue(), Object.class)));
        }
        Integer maxTokens = maxTokens(f, "max_completion_tokens", contextSize);
        if (maxTokens == null) maxTokens = maxTokens(f, "max_tokens", contextSize);
        else maxTokens(f, "max_tokens", contextSize);
        boolean logprobs = f.bool("logprobs", false);
        Long top = f.integer("top_logprobs", 0, 20);
        if (top != null && !logprobs) {
            throw ApiException.invalidValue("top_logprobs", "Invalid value for 'top_logprobs': logprobs must be set to true when top_logprobs is used.");
        }
        int topLogprobs = logprobs ? (top == null ? 0 : top.intValue()) : -1;
        return new Chat(model, messages, tools, toolsJson, choice, kwargs, generation(f, maxTokens, topLogprobs));
    }

    static Completion completion(JsonNode body, int contextSize) {
        Fields f = Fields.of(body, "");
        String model = model(f);
        JsonNode p = f.raw("prompt");
        if (p == null) throw ApiException.missing("prompt");
        String text = null;
        int[] tokens = null;
        if (p.isTextual()) {
            text = p.textValue();
        } else if (p.isArray()) {
            if (p.isEmpty()) throw ApiException.invalid("prompt", "empty_array", "Invalid 'prompt': empty array.");
            if (p.get(0).isTextual()) {
                if (p.size() > 1) {
                    throw ApiException.invalidValue("prompt", "Invalid 'prompt': this server takes one prompt per request, got " + p.size() + ".");
                }
                text = p.get(0).textValue();
            } else if (p.get(0).isIntegralNumber()) {
                tokens = tokenIds(p, "prompt");
            } else if (p.get(0).isArray()) {
                if (p.size() > 1) {
                    throw ApiException.invalidValue("prompt", "Invalid 'prompt': this server takes one prompt per request, got " + p.size() + ".");
                }
                tokens = tokenIds(p.get(0), "prompt[0]");
            } else {
                throw ApiException.invalidType("prompt[0]", "a string or a token id", Fields.describe(p.get(0)));
            }
        } else {
            throw ApiException.invalidType("prompt", "a string or an array", Fields.describe(p));
        }
        if (tokens != null && tokens.length == 0) throw ApiException.invalid("prompt", "empty_array", "Invalid 'prompt': no tokens.");
        boolean echo = f.bool("echo", false);
        Long bestOf = f.integer("best_of", 0, 20);
        if (bestOf != null && bestOf != 1) throw ApiException.invalidValue("best_of", "Invalid 'best_of': only 1 is supported.");
        f.string("suffix");
        Integer maxTokens = maxTokens(f, "max_tokens", contextSize);
        if (maxTokens == null && !f.has("max_tokens")) maxTokens = 16; // OpenAI's default for completions
        Long lp = f.integer("logprobs", 0, 5);
        return new Completion(model, text, tokens, echo, generation(f, maxTokens, lp == null ? -1 : lp.intValue()));
    }

    private static int[] tokenIds(JsonNode arr, String param) {
        if (!arr.isArray()) throw ApiException.invalidType(param, "an array of token ids", Fields.describe(arr));
        int[] ids = new int[arr.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = arr.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToInt()) throw ApiException.invalidType(param + "[" + i + "]", "a token id", Fields.describe(v));
            ids[i] = v.intValue();
        }
        return ids;
    }

    private static Integer maxTokens(Fields f, String name, int contextSize) {
        JsonNode v = f.raw(name);
        if (v == null) return null;
        if (!v.isIntegralNumber()) throw ApiException.invalidType(name, "an integer", Fields.describe(v));
        if (!v.canConvertToLong() || v.longValue() < 1) {
            throw ApiException.invalidValue(name, "Invalid '" + name + "': integer below minimum value. Expected a value >= 1, but got "
                    + v.asText() + " instead.");
        }
        if (v.longValue() > contextSize) {
            throw ApiException.invalidValue(name, name + " is too large: " + v.asText() + ". This model supports at most "
                    + contextSize + " completion tokens.");
        }
        return v.intValue();
    }

    private static Generation generation(Fields f, Integer maxTokens, int topLogprobs) {
        Long n = f.integer("n", 1, 128);
        if (n != null && n != 1) throw ApiException.invalidValue("n", "Invalid 'n': only n = 1 is supported, got " + n + ".");
        Double temperature = f.number("temperature", 0, 2);
        Double topP = f.number("top_p", 0, 1);
        Long topK = f.integer("top_k", 0, 1 << 20);
        Double minP = f.number("min_p", 0, 1);
        Double repeat = f.number("repeat_penalty", 0.01, 10);
        Double presence = f.number("presence_penalty", -2, 2);
        Double frequency = f.number("frequency_penalty", -2, 2);
        Long seed = f.integer("seed", Long.MIN_VALUE, Long.MAX_VALUE);
        float t = temperature == null ? 1f : temperature.floatValue();
        float p = topP == null ? 1f : Math.max(topP.floatValue(), Float.MIN_NORMAL);
        SamplingOptions sampling = new SamplingOptions(t, topK == null ? 0 : topK.intValue(), p,
                minP == null ? 0f : minP.floatValue(), repeat == null ? 1f : repeat.floatValue(), 64,
                presence == null ? 0f : presence.floatValue(), frequency == null ? 0f : frequency.floatValue(),
                seed != null ? seed : ThreadLocalRandom.current().nextLong());

        List<String> stop = new ArrayList<>();
        JsonNode s = f.raw("stop");
        if (s != null) {
            if (s.isTextual()) {
                stop.add(s.textValue());
            } else if (s.isArray()) {
                if (s.size() > MAX_STOP) {
                    throw ApiException.invalidValue("stop", "Invalid 'stop': at most " + MAX_STOP + " stop sequences, got " + s.size() + ".");
                }
                for (int i = 0; i < s.size(); i++) {
                    if (!s.get(i).isTextual()) throw ApiException.invalidType("stop[" + i + "]", "a string", Fields.describe(s.get(i)));
                    stop.add(s.get(i).textValue());
                }
            } else {
                throw ApiException.invalidType("stop", "a string or an array of strings", Fields.describe(s));
            }
        }
        stop.removeIf(String::isEmpty);

        boolean stream = f.bool("stream", false);
        boolean includeUsage = false;
        JsonNode so = f.object("stream_options");
        if (so != null) {
            if (!stream) {
                throw ApiException.invalidValue("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            }
            includeUsage = new Fields(so, "stream_options.").bool("include_usage", false);
        }
        boolean json = false;
        JsonNode rf = f.object("response_format");
        if (rf != null) {
            Fields rff = new Fields(rf, "response_format.");
            String type = rff.requiredString("type");
            switch (type) {
                case "text" -> {
                }
                case "json_object" -> json = true;
                case "json_schema" -> {
                    JsonNode js = rff.object("json_schema");
                    if (js == null) throw ApiException.missing("response_format.json_schema");
                    new Fields(js, "response_format.json_schema.").requiredString("name");
                    json = true;
                }
                default -> throw ApiException.invalidValue("response_format.type", "Invalid value: '" + type
                        + "'. Supported values are: 'text', 'json_object' and 'json_schema'.");
            }
        }
        String user = f.string("user");
        return new Generation(maxTokens, sampling, List.copyOf(stop), stream, includeUsage, topLogprobs, json, user);
    }

    private static Message message(JsonNode m, String param) {
        Fields f = Fields.of(m, param);
        String role = f.requiredString("role");
        if (!ROLES.contains(role)) {
            throw ApiException.invalidValue(param + ".role", "Invalid value: '" + role
                    + "'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.");
        }
        String content = content(f, param, role);
        String name = f.string("name");
        List<ToolCall> calls = List.of();
        JsonNode tc = f.array("tool_calls");
        if (tc != null) {
            if (!role.equals("assistant")) {
                throw ApiException.invalidValue(param + ".tool_calls", "Invalid parameter: only messages with role 'assistant' can have 'tool_calls'.");
            }
            calls = new ArrayList<>();
            for (int i = 0; i < tc.size(); i++) {
                String p = param + ".tool_calls[" + i + "]";
                Fields c = Fields.of(tc.get(i), p);
                String id = c.requiredString("id");
                String type = c.string("type");
                if (type != null && !type.equals("function")) {
                    throw ApiException.invalidValue(p + ".type", "Invalid value: '" + type + "'. Supported values are: 'function'.");
                }
                JsonNode fn = c.object("function");
                if (fn == null) throw ApiException.missing(p + ".function");
                Fields ff = new Fields(fn, p + ".function.");
                calls.add(new ToolCall(id, ff.requiredString("name"), ff.requiredString("arguments")));
            }
        }
        String toolCallId = f.string("tool_call_id");
        if (role.equals("tool") && toolCallId == null) throw ApiException.missing(param + ".tool_call_id");
        if (content == null && !(role.equals("assistant") && (!calls.isEmpty() || f.has("refusal")))) {
            throw ApiException.missing(param + ".content");
        }
        return new Message(role, content, name, calls, toolCallId);
    }

    /** String content, or the concatenated text of text parts. */
    private static String content(Fields f, String param, String role) {
        JsonNode c = f.raw("content");
        if (c == null) return null;
        if (c.isTextual()) return c.textValue();
        if (!c.isArray()) throw ApiException.invalidType(param + ".content", "a string or an array of content parts", Fields.describe(c));
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < c.size(); i++) {
            String p = param + ".content[" + i + "]";
            Fields part = Fields.of(c.get(i), p);
            String type = part.requiredString("type");
            if (type.equals("text")) {
                sb.append(part.requiredString("text"));
            } else if (type.equals("refusal") && role.equals("assistant")) {
                sb.append(part.requiredString("refusal"));
            } else {
                throw ApiException.invalidValue(p + ".type", "Invalid content part type '" + type
                        + "': this model takes text only ('text' parts).");
            }
        }
        return sb.toString();
    }

    private static List<Tool> tools(JsonNode arr) {
        List<Tool> tools = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < arr.size(); i++) {
            String p = "tools[" + i + "]";
            Fields t = Fields.of(arr.get(i), p);
            String type = t.requiredString("type");
            if (!type.equals("function")) {
                throw ApiException.invalidValue(p + ".type", "Invalid value: '" + type + "'. Supported values are: 'function'.");
            }
            JsonNode fn = t.object("function");
            if (fn == null) throw ApiException.missing(p + ".function");
            Fields ff = new Fields(fn, p + ".function.");
            String name = ff.requiredString("name");
            if (!TOOL_NAME.matcher(name).matches()) {
                throw ApiException.invalidValue(p + ".function.name", "Invalid 'tools[" + i + "].function.name': string does not match pattern. "
                        + "Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.");
            }
            if (!names.add(name)) {
                throw ApiException.invalidValue(p + ".function.name", "Invalid 'tools': duplicate function name '" + name + "'.");
            }
            String description = ff.string("description");
            JsonNode params = ff.object("parameters");
            if (params != null) schema(params, p + ".function.parameters", true);
            ff.bool("strict");
            tools.add(new Tool(name, description, params));
        }
        return tools;
    }

    /** Checks the parts of a JSON schema a template and a parser rely on. */
    private static void schema(JsonNode s, String param, boolean top) {
        Fields f = Fields.of(s, param);
        JsonNode type = f.raw("type");
        if (type != null) {
            if (!type.isTextual() && !type.isArray()) throw ApiException.invalidType(param + ".type", "a string or an array", Fields.describe(type));
            Set<String> ok = Set.of("object", "array", "string", "number", "integer", "boolean", "null");
            List<String> types = new ArrayList<>();
            if (type.isTextual()) types.add(type.textValue());
            else type.forEach(x -> types.add(x.isTextual() ? x.textValue() : "?"));
            for (String ty : types) {
                if (!ok.contains(ty)) throw ApiException.invalid(param + ".type", "invalid_function_parameters",
                        "Invalid schema for function parameters: '" + ty + "' is not a valid type.");
            }
            if (top && !types.contains("object")) {
                throw ApiException.invalid(param, "invalid_function_parameters",
                        "Invalid schema for function parameters: schema must be a JSON Schema of 'type: \"object\"', got 'type: \"" + types.get(0) + "\"'.");
            }
        }
        JsonNode props = f.raw("properties");
        if (props != null) {
            if (!props.isObject()) throw ApiException.invalid(param + ".properties", "invalid_function_parameters",
                    "Invalid schema for function parameters: 'properties' must be an object.");
            for (var e : props.properties()) schema(e.getValue(), param + ".properties." + e.getKey(), false);
        }
        JsonNode req = f.raw("required");
        if (req != null) {
            if (!req.isArray()) throw ApiException.invalid(param + ".required", "invalid_function_parameters",
                    "Invalid schema for function parameters: 'required' must be an array of strings.");
            for (JsonNode r : req) {
                if (!r.isTextual()) throw ApiException.invalid(param + ".required", "invalid_function_parameters",
                        "Invalid schema for function parameters: 'required' must be an array of strings.");
            }
        }
        JsonNode items = f.raw("items");
        if (items != null && items.isObject()) schema(items, param + ".items", false);
    }

    private static ToolChoice toolChoice(JsonNode v, List<Tool> tools) {
        if (v == null) return tools.isEmpty() ? ToolChoice.NONE : ToolChoice.AUTO;
        ToolChoice c;
        if (v.isTextual()) {
            c = switch (v.textValue()) {
                case "none" -> ToolChoice.NONE;
                case "auto" -> ToolChoice.AUTO;
                case "required" -> new ToolChoice(ToolChoiceMode.REQUIRED, null);
                default -> throw ApiException.invalidValue("tool_choice", "Invalid value: '" + v.textValue()
                        + "'. Supported values are: 'none', 'auto' and 'required'.");
            };
        } else if (v.isObject()) {
            Fields f = new Fields(v, "tool_choice.");
            String type = f.requiredString("type");
            if (!type.equals("function")) throw ApiException.invalidValue("tool_choice.type", "Invalid value: '" + type + "'. Supported values are: 'function'.");
            JsonNode fn = f.object("function");
            if (fn == null) throw ApiException.missing("tool_choice.function");
            String name = new Fields(fn, "tool_choice.function.").requiredString("name");
            if (tools.stream().noneMatch(t -> t.name().equals(name))) {
                throw ApiException.invalidValue("tool_choice", "Invalid value for 'tool_choice': no function named '" + name + "' was specified in 'tools'.");
            }
            c = new ToolChoice(ToolChoiceMode.NAMED, name);
        } else {
            throw ApiException.invalidType("tool_choice", "a string or an object", Fields.describe(v));
        }
        if (tools.isEmpty() && c.mode() != ToolChoiceMode.NONE && c.mode() != ToolChoiceMode.AUTO) {
            throw ApiException.invalidValue("tool_choice", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
        }
        return tools.isEmpty() ? ToolChoice.NONE : c;
    }
}
