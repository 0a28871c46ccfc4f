package io.moe4j.server.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The {@code tojson} filter: Python's {@code json.dumps} as Hugging Face calls it (ensure_ascii off by default). */
final class Json {
    private Json() {
    }

    /**
     * @param indent      null: one line; else spaces per level (items then separated by {@code ","} and newlines)
     * @param itemSep     separator between items ({@code ", "} on one line)
     * @param keySep      separator between a key and its value
     */
    static String dump(Object v, Integer indent, String itemSep, String keySep, boolean sortKeys, boolean ensureAscii) {
        StringBuilder sb = new StringBuilder();
        write(sb, v, indent, itemSep, keySep, sortKeys, ensureAscii, 0);
        return sb.toString();
    }

    static String dump(Object v, Integer indent) {
        return dump(v, indent, indent == null ? ", " : ",", ": ", false, false);
    }

    private static void write(StringBuilder sb, Object v, Integer indent, String itemSep, String keySep, boolean sortKeys,
                              boolean ascii, int depth) {
        if (v == null || v instanceof Values.Undefined) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Long l) {
            sb.append(l);
        } else if (v instanceof Double d) {
            if (Double.isNaN(d)) sb.append("NaN");
            else if (Double.isInfinite(d)) sb.append(d > 0 ? "Infinity" : "-Infinity");
            else sb.append(Values.floatRepr(d));
        } else if (v instanceof String s) {
            string(sb, s, ascii);
        } else if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) sb.append(itemSep);
                newline(sb, indent, depth + 1);
                write(sb, l.get(i), indent, itemSep, keySep, sortKeys, ascii, depth + 1);
            }
            newline(sb, indent, depth);
            sb.append(']');
        } else if (v instanceof Map<?, ?> || v instanceof Values.Namespace) {
            Map<?, ?> m = v instanceof Values.Namespace ns ? ns.attrs : (Map<?, ?>) v;
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            List<Object> keys = new ArrayList<>(m.keySet());
            if (sortKeys) keys.sort(Values.ordering(true));
            sb.append('{');
            for (int i = 0; i < keys.size(); i++) {
                if (i > 0) sb.append(itemSep);
                newline(sb, indent, depth + 1);
                string(sb, String.valueOf(keys.get(i)), ascii);
                sb.append(keySep);
                write(sb, m.get(keys.get(i)), indent, itemSep, keySep, sortKeys, ascii, depth + 1);
            }
            newline(sb, indent, depth);
            sb.append('}');
        } else {
            throw new TemplateException("Object of type " + Values.typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(StringBuilder sb, Integer indent, int depth) {
        if (indent == null) return;
        sb.append('\n');
        sb.append(" ".repeat(indent * depth));
    }

    static void string(StringBuilder sb, String s, boolean ascii) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ascii && c > 0x7e)) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }
}
