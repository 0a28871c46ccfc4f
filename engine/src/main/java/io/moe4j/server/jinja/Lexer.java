package io.moe4j.server.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a template into text and tag tokens. Whitespace handling follows Hugging Face's chat-template
 * environment: {@code trim_blocks} and {@code lstrip_blocks} on, one trailing newline of the template dropped,
 * {@code -} on a tag stripping the whitespace next to it, and {@code {% generation %}} markers removed.
 */
final class Lexer {
    enum Type { TEXT, COMMENT, OPEN_STMT, CLOSE_STMT, OPEN_EXPR, CLOSE_EXPR, NAME, STRING, INT, FLOAT, OP }

    record Token(Type type, String value, int pos) {
        boolean is(Type t, String v) {
            return type == t && value.equals(v);
        }

        boolean isOp(String v) {
            return type == Type.OP && value.equals(v);
        }

        boolean isName(String v) {
            return type == Type.NAME && value.equals(v);
        }
    }

    private static final Pattern LSTRIP = Pattern.compile("(?m)^[ \\t]*(\\{[#%-])");
    private static final Pattern TRIM = Pattern.compile("([#%-]})\\n");
    private static final Pattern GENERATION = Pattern.compile("(?s)(\\s*)\\{%(-?)\\s*(?:end)?generation\\s*(-?)%}(\\s*)");
    private static final String[] OPS = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "{", "}", "[", "]", ",", ".", ":", "|",
            "<", ">", "+", "-", "~", "*", "/", "%", "="};

    private final String src;
    private int pos;
    private final List<Token> tokens = new ArrayList<>();

    private Lexer(String src) {
        this.src = src;
    }

    static String preprocess(String template) {
        String t = template.endsWith("\n") ? template.substring(0, template.length() - 1) : template;
        t = LSTRIP.matcher(t).replaceAll("$1");
        t = TRIM.matcher(t).replaceAll("$1");
        Matcher m = GENERATION.matcher(t);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String rep = (m.group(2).isEmpty() ? m.group(1) : "") + (m.group(3).isEmpty() ? m.group(4) : "");
            m.appendReplacement(sb, Matcher.quoteReplacement(rep));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    static List<Token> tokenize(String template) {
        Lexer l = new Lexer(preprocess(template));
        l.run();
        return l.tokens;
    }

    private static boolean ws(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\uFEFF';
    }

    private boolean startsTag(int i) {
        if (i + 1 >= src.length() || src.charAt(i) != '{') return false;
        char c = src.charAt(i + 1);
        return c == '%' || c == '{' || c == '#';
    }

    private void stripTrailingWhitespace() {
        if (tokens.isEmpty()) return;
        Token last = tokens.getLast();
        if (last.type() != Type.TEXT) return;
        String v = last.value();
        int end = v.length();
        while (end > 0 && ws(v.charAt(end - 1))) end--;
        tokens.removeLast();
        if (end > 0) tokens.add(new Token(Type.TEXT, v.substring(0, end), last.pos()));
    }

    private void skipWhitespace() {
        while (pos < src.length() && ws(src.charAt(pos))) pos++;
    }

    private void run() {
        boolean inTag = false;
        boolean expression = false;
        int braceDepth = 0;
        while (pos < src.length()) {
            if (!inTag) {
                int start = pos;
                while (pos < src.length() && !startsTag(pos)) pos++;
                if (pos > start) tokens.add(new Token(Type.TEXT, src.substring(start, pos), start));
                if (pos >= src.length()) break;
                char kind = src.charAt(pos + 1);
                if (kind == '#') {
                    int open = pos;
                    pos += 2;
                    boolean stripBefore = pos < src.length() && src.charAt(pos) == '-';
                    int end = src.indexOf("#}", pos);
                    if (end < 0) throw error(open, "the comment is not closed (missing #})");
                    boolean stripAfter = end > pos && src.charAt(end - 1) == '-';
                    if (stripBefore) stripTrailingWhitespace();
                    tokens.add(new Token(Type.COMMENT, "", open));
                    pos = end + 2;
                    if (stripAfter) skipWhitespace();
                    continue;
                }
                int open = pos;
                pos += 2;
                if (pos < src.length() && src.charAt(pos) == '-') {
                    stripTrailingWhitespace();
                    pos++;
                } else if (pos < src.length() && src.charAt(pos) == '+') {
                    pos++; // {%+ : no lstrip (already applied by preprocessing), nothing else to do
                }
                expression = kind == '{';
                tokens.add(new Token(expression ? Type.OPEN_EXPR : Type.OPEN_STMT, expression ? "{{" : "{%", open));
                inTag = true;
                braceDepth = 0;
                continue;
            }
            skipWhitespace();
            if (pos >= src.length()) throw error(pos, "the template ends inside a tag");
            // closing tags, with or without whitespace control
            if (src.startsWith("-%}", pos) || src.startsWith("-}}", pos) && braceDepth == 0) {
                boolean stmt = src.charAt(pos + 1) == '%';
                if (stmt == expression) throw error(pos, "unexpected '" + src.substring(pos, pos + 3) + "'");
                tokens.add(new Token(stmt ? Type.CLOSE_STMT : Type.CLOSE_EXPR, stmt ? "%}" : "}}", pos));
                pos += 3;
                skipWhitespace();
                inTag = false;
                continue;
            }
            if (src.startsWith("%}", pos) || src.startsWith("}}", pos) && braceDepth == 0 && expression) {
                boolean stmt = src.charAt(pos) == '%';
                if (stmt == expression) throw error(pos, "unexpected '" + src.substring(pos, pos + 2) + "'");
                tokens.add(new Token(stmt ? Type.CLOSE_STMT : Type.CLOSE_EXPR, stmt ? "%}" : "}}", pos));
                pos += 2;
                inTag = false;
                continue;
            }
            char c = src.charAt(pos);
            if (c == '\'' || c == '"') {
                tokens.add(new Token(Type.STRING, string(c), pos));
                continue;
            }
            if (c >= '0' && c <= '9') {
                int start = pos;
                while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
                boolean isFloat = false;
                boolean afterDot = !tokens.isEmpty() && tokens.getLast().isOp(".");
                if (!afterDot && pos + 1 < src.length() && src.charAt(pos) == '.' && Character.isDigit(src.charAt(pos + 1))) {
                    pos++;
                    while (pos < src.length() && Character.isDigit(src.charAt(pos))) pos++;
                    isFloat = true;
                }
                if (!afterDot && pos < src.length() && (src.charAt(pos) == 'e' || src.charAt(pos) == 'E')) {
                    int save = pos;
                    pos++;
                    if (pos < src.length() && (src.charAt(pos) == '+' || src.charAt(pos) == '-')) pos++;
                    if (pos < src.length() && Character.isDigit(src.charAt(pos))) {
                        while (pos < src.length() && Character.isDigit(src.charAt(pos))) pos++;
                        isFloat = true;
                    } else {
                        pos = save;
                    }
                }
                tokens.add(new Token(isFloat ? Type.FLOAT : Type.INT, src.substring(start, pos).replace("_", ""), start));
                continue;
            }
            if (Character.isLetter(c) || c == '_') {
                int start = pos;
                while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
                tokens.add(new Token(Type.NAME, src.substring(start, pos), start));
                continue;
            }
            String op = null;
            for (String o : OPS) {
                if (src.startsWith(o, pos)) {
                    op = o;
                    break;
                }
            }
            if (op == null) throw error(pos, "unexpected character '" + c + "'");
            if (op.equals("{")) braceDepth++;
            if (op.equals("}")) braceDepth--;
            tokens.add(new Token(Type.OP, op, pos));
            pos += op.length();
        }
        if (inTag) throw error(pos, "the template ends inside a tag");
    }

    private String string(char quote) {
        int open = pos;
        pos++;
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (pos >= src.length()) throw error(open, "the string literal is not closed");
            char c = src.charAt(pos++);
            if (c == quote) break;
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (pos >= src.length()) throw error(open, "the string literal is not closed");
            char e = src.charAt(pos++);
            switch (e) {
                case 'n' -> sb.append('\n');
                case 't' -> sb.append('\t');
                case 'r' -> sb.append('\r');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'v' -> sb.append('\u000B');
                case '0' -> sb.append('\0');
                case '\'', '"', '\\' -> sb.append(e);
                case '\n' -> {
                    // line continuation
                }
                case 'x', 'u', 'U' -> {
                    int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (pos + len > src.length()) throw error(pos, "bad \\" + e + " escape");
                    try {
                        sb.appendCodePoint(Integer.parseInt(src.substring(pos, pos + len), 16));
                    } catch (IllegalArgumentException ex) {
                        throw error(pos, "bad \\" + e + " escape");
                    }
                    pos += len;
                }
                default -> sb.append('\\').append(e); // Python keeps unknown escapes as they are
            }
        }
        return sb.toString();
    }

    private TemplateException error(int at, String message) {
        int line = 1;
        for (int i = 0; i < Math.min(at, src.length()); i++) if (src.charAt(i) == '\n') line++;
        return new TemplateException("template syntax error at line " + line + ": " + message);
    }
}
