package io.moe4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parsers of the tool-call syntaxes models are trained on, as streaming {@link ChatOutput}s: Qwen/Hermes
 * {@code <tool_call>{json}</tool_call>} (with {@code <think>} reasoning), Llama 3 JSON
 * ({@code {"name": ..., "parameters": ...}}, optionally after {@code <|python_tag|>}), Mistral
 * {@code [TOOL_CALLS][{...}]}, and gpt-oss harmony ({@code to=functions.NAME} in the commentary channel).
 */
final class ToolCallParsers {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ToolCallParsers() {
    }

    /** {@code {"name": N, "arguments"|"parameters": A}} as a call, or null. */
    static ChatOutput.Call call(JsonNode n) {
        if (n == null || !n.isObject()) return null;
        JsonNode fn = n.has("function") && n.get("function").isObject() ? n.get("function") : n;
        JsonNode name = fn.get("name");
        if (name == null || !name.isTextual() || name.textValue().isEmpty()) return null;
        JsonNode args = fn.has("arguments") ? fn.get("arguments") : fn.get("parameters");
        return new ChatOutput.Call(name.textValue(), arguments(args));
    }

    /** Arguments as JSON text: objects compact, a string holding JSON kept as it is. */
    static String arguments(JsonNode args) {
        if (args == null || args.isNull()) return "{}";
        if (args.isTextual()) {
            try {
                JSON.readTree(args.textValue());
                return args.textValue();
            } catch (JsonProcessingException e) {
                return args.toString();
            }
        }
        return args.toString();
    }

    static JsonNode parse(String text) {
        try {
            return JSON.readTree(text.strip());
        } catch (JsonProcessingException | RuntimeException e) {
            return null;
        }
    }

    // ---- Hermes / Qwen ----------------------------------------------------------------------------------------

    /** {@code <tool_call>...</tool_call>} blocks and an optional leading {@code <think>...</think>}. */
    static final class Hermes implements ChatOutput {
        private enum Mode { CONTENT, THINK, CALL }

        private final MarkerScanner scanner;
        private final boolean tools;
        private Mode mode;
        private final StringBuilder call = new StringBuilder();
        private boolean seenText;
        /** After </think> or a tool call: whitespace before the next text is dropped. */
        private boolean stripLead;

        Hermes(boolean tools, boolean thinking, boolean startInThink) {
            this.tools = tools;
            List<String> markers = new ArrayList<>();
            if (tools) markers.addAll(List.of("<tool_call>", "</tool_call>"));
            if (thinking) markers.addAll(List.of("<think>", "</think>"));
            this.scanner = new MarkerScanner(markers);
            this.mode = startInThink ? Mode.THINK : Mode.CONTENT;
        }

        @Override
        public List<Part> accept(String text) {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.feed(text)) handle(p, out);
            return out;
        }

        @Override
        public List<Part> finish() {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.finish()) handle(p, out);
            if (mode == Mode.CALL) {
                Call c = call(parse(call.toString()));
                if (c != null) out.add(c);
                else out.add(new Content("<tool_call>" + call));
                call.setLength(0);
                mode = Mode.CONTENT;
            }
            return out;
        }

        private void handle(MarkerScanner.Piece p, List<Part> out) {
            switch (p) {
                case MarkerScanner.Text t -> text(t.text(), out);
                case MarkerScanner.Marker m -> {
                    switch (m.marker()) {
                        case "<think>" -> {
                            if (mode == Mode.CONTENT && !seenText) mode = Mode.THINK;
                            else text(m.marker(), out);
                        }
                        case "</think>" -> {
                            if (mode == Mode.THINK) {
                                mode = Mode.CONTENT;
                                stripLead = true;
                            } else {
                                text(m.marker(), out);
                            }
                        }
                        case "<tool_call>" -> {
                            if (mode == Mode.CONTENT) {
                                mode = Mode.CALL;
                                call.setLength(0);
                            } else {
                                text(m.marker(), out);
                            }
                        }
                        case "</tool_call>" -> {
                            if (mode == Mode.CALL) {
                                Call c = call(parse(call.toString()));
                                out.add(c != null ? c : new Content("<tool_call>" + call + "</tool_call>"));
                                call.setLength(0);
                                mode = Mode.CONTENT;
                                seenText = true;
                                stripLead = true;
                            } else {
                                text(m.marker(), out);
                            }
                        }
                        default -> text(m.marker(), out);
                    }
                }
            }
        }

        private void text(String s, List<Part> out) {
            switch (mode) {
                case THINK -> {
                    if (!s.isEmpty()) out.add(new Reasoning(s));
                }
                case CALL -> call.append(s);
                case CONTENT -> {
                    if (stripLead || (!seenText && tools)) {
                        // the blank lines after </think>, or around tool calls
                        String stripped = s.stripLeading();
                        if (stripped.isEmpty()) return;
                        s = stripped;
                        stripLead = false;
                    }
                    seenText = true;
                    out.add(new Content(s));
                }
            }
        }
    }

    // ---- Llama 3 ---------------------------------------------------------------------------------------------

    /** A JSON object (or several, separated by ';') as the whole answer, or {@code <|python_tag|>} then JSON. */
    static final class Llama3 implements ChatOutput {
        private final MarkerScanner scanner = new MarkerScanner(List.of("<|python_tag|>"));
        private final StringBuilder lead = new StringBuilder();
        private final StringBuilder json = new StringBuilder();
        private int state; // 0 undecided, 1 content, 2 json

        @Override
        public List<Part> accept(String text) {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.feed(text)) handle(p, out);
            return out;
        }

        private void handle(MarkerScanner.Piece p, List<Part> out) {
            if (p instanceof MarkerScanner.Marker) {
                if (state == 0 && !lead.toString().isBlank()) out.add(new Content(lead.toString()));
                lead.setLength(0);
                state = 2;
                return;
            }
            String s = ((MarkerScanner.Text) p).text();
            switch (state) {
                case 0 -> {
                    lead.append(s);
                    String t = lead.toString().stripLeading();
                    if (t.isEmpty()) return;
                    if (t.charAt(0) == '{') {
                        state = 2;
                        json.append(t);
                    } else {
                        state = 1;
                        out.add(new Content(lead.toString()));
                    }
                    lead.setLength(0);
                }
                case 1 -> out.add(new Content(s));
                default -> json.append(s);
            }
        }

        @Override
        public List<Part> finish() {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.finish()) handle(p, out);
            if (state == 0 && !lead.isEmpty()) out.add(new Content(lead.toString()));
            if (state == 2) {
                List<Part> calls = new ArrayList<>();
                for (String chunk : json.toString().split(";")) {
                    if (chunk.isBlank()) continue;
                    Call c = call(parse(chunk));
                    if (c == null) {
                        calls = null;
                        break;
                    }
                    calls.add(c);
                }
                if (calls != null && !calls.isEmpty()) out.addAll(calls);
                else if (!json.isEmpty()) out.add(new Content(json.toString()));
            }
            return out;
        }
    }

    // ---- Mistral ---------------------------------------------------------------------------------------------

    /** {@code [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]}, or {@code [TOOL_CALLS]name[ARGS]{...}}. */
    static final class Mistral implements ChatOutput {
        private final MarkerScanner scanner = new MarkerScanner(List.of("[TOOL_CALLS]"));
        private final StringBuilder calls = new StringBuilder();
        private boolean inCalls;

        @Override
        public List<Part> accept(String text) {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.feed(text)) handle(p, out);
            return out;
        }

        private void handle(MarkerScanner.Piece p, List<Part> out) {
            if (p instanceof MarkerScanner.Marker) {
                inCalls = true;
                calls.append("[TOOL_CALLS]");
                return;
            }
            String s = ((MarkerScanner.Text) p).text();
            if (inCalls) calls.append(s);
            else if (!s.isEmpty()) out.add(new Content(s));
        }

        @Override
        public List<Part> finish() {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.finish()) handle(p, out);
            if (!inCalls) return out;
            List<Part> parsed = new ArrayList<>();
            for (String block : calls.toString().split(Pattern.quote("[TOOL_CALLS]"))) {
                if (block.isBlank()) continue;
                int args = block.indexOf("[ARGS]");
                if (args >= 0) {
                    JsonNode a = parse(block.substring(args + 6));
                    String name = block.substring(0, args).strip();
                    if (a == null || name.isEmpty()) {
                        parsed = null;
                        break;
                    }
                    parsed.add(new Call(name, arguments(a)));
                    continue;
                }
                JsonNode n = parse(block);
                if (n != null && n.isArray()) {
                    for (JsonNode item : n) {
                        Call c = call(item);
                        if (c == null) {
                            parsed = null;
                            break;
                        }
                        parsed.add(c);
                    }
                    if (parsed == null) break;
                } else {
                    Call c = call(n);
                    if (c == null) {
                        parsed = null;
                        break;
                    }
                    parsed.add(c);
                }
            }
            if (parsed != null && !parsed.isEmpty()) out.addAll(parsed);
            else out.add(new Content(calls.toString()));
            return out;
        }
    }

    // ---- gpt-oss harmony -------------------------------------------------------------------------------------

    /**
     * The harmony format: messages {@code <|channel|>C [to=R] [<|constrain|>json]<|message|>BODY<|end|>}, each
     * after {@code <|start|>assistant}. analysis is reasoning, final is content, and a commentary message to
     * {@code functions.NAME} is a tool call whose body is the arguments.
     */
    static final class Harmony implements ChatOutput {
        private static final Pattern RECIPIENT = Pattern.compile("to=([^\\s<]+)");
        private static final Pattern CHANNEL = Pattern.compile("<\\|channel\\|>\\s*(\\w+)");
        private final MarkerScanner scanner = new MarkerScanner(List.of("<|start|>", "<|channel|>", "<|message|>",
                "<|end|>", "<|return|>", "<|call|>", "<|constrain|>"));
        private final StringBuilder header = new StringBuilder();
        private final StringBuilder body = new StringBuilder();
        private boolean inBody;
        private String channel = "";
        private String recipient;
        private boolean sawMessage;

        @Override
        public List<Part> accept(String text) {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.feed(text)) handle(p, out);
            return out;
        }

        private void handle(MarkerScanner.Piece p, List<Part> out) {
            if (p instanceof MarkerScanner.Marker m) {
                switch (m.marker()) {
                    case "<|message|>" -> {
                        if (inBody) {
                            bodyText(m.marker(), out);
                            return;
                        }
                        String h = header.toString();
                        Matcher c = CHANNEL.matcher(h);
                        channel = c.find() ? c.group(1) : "final";
                        Matcher r = RECIPIENT.matcher(h);
                        recipient = r.find() ? r.group(1) : null;
                        header.setLength(0);
                        body.setLength(0);
                        inBody = true;
                        sawMessage = true;
                    }
                    case "<|end|>", "<|return|>", "<|call|>" -> endMessage(out);
                    case "<|start|>" -> {
                        if (inBody) endMessage(out);
                        header.setLength(0);
                    }
                    default -> {
                        if (inBody) bodyText(m.marker(), out);
                        else header.append(m.marker());
                    }
                }
                return;
            }
            String s = ((MarkerScanner.Text) p).text();
            if (inBody) bodyText(s, out);
            else header.append(s);
        }

        private boolean isCall() {
            return recipient != null && recipient.startsWith("functions.");
        }

        private void bodyText(String s, List<Part> out) {
            if (s.isEmpty()) return;
            if (isCall()) body.append(s);
            else if (channel.equals("analysis")) out.add(new Reasoning(s));
            else out.add(new Content(s));
        }

        private void endMessage(List<Part> out) {
            if (inBody && isCall()) {
                String name = recipient.substring("functions.".length());
                JsonNode args = parse(body.toString());
                out.add(new Call(name, args != null ? args.toString() : body.toString()));
            }
            inBody = false;
            recipient = null;
            body.setLength(0);
            header.setLength(0);
        }

        @Override
        public List<Part> finish() {
            List<Part> out = new ArrayList<>();
            for (MarkerScanner.Piece p : scanner.finish()) handle(p, out);
            if (inBody) endMessage(out);
            else if (!sawMessage && !header.toString().isBlank()) out.add(new Content(header.toString()));
            return out;
        }
    }
}
