package io.moe4j.server.jinja;

import io.moe4j.server.jinja.Lexer.Token;
import io.moe4j.server.jinja.Lexer.Type;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Recursive-descent parser with Jinja2's grammar and operator precedence. */
final class Parser {
    private final List<Token> tokens;
    private int i;

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String template) {
        Parser p = new Parser(Lexer.tokenize(template));
        List<Node> body = p.block(Set.of());
        if (p.i < p.tokens.size()) throw p.error("unexpected '" + p.tokens.get(p.i).value() + "'");
        return body;
    }

    // ---- token helpers ----

    private Token peek() {
        return i < tokens.size() ? tokens.get(i) : null;
    }

    private Token peek(int ahead) {
        return i + ahead < tokens.size() ? tokens.get(i + ahead) : null;
    }

    private Token next() {
        if (i >= tokens.size()) throw error("unexpected end of template");
        return tokens.get(i++);
    }

    private boolean atOp(String op) {
        Token t = peek();
        return t != null && t.isOp(op);
    }

    private boolean atName(String name) {
        Token t = peek();
        return t != null && t.isName(name);
    }

    private void expectOp(String op) {
        Token t = next();
        if (!t.isOp(op)) throw error("expected '" + op + "', got '" + t.value() + "'");
    }

    private void expectName(String name) {
        Token t = next();
        if (!t.isName(name)) throw error("expected '" + name + "', got '" + t.value() + "'");
    }

    private String name() {
        Token t = next();
        if (t.type() != Type.NAME) throw error("expected a name, got '" + t.value() + "'");
        return t.value();
    }

    private void expect(Type type) {
        Token t = next();
        if (t.type() != type) throw error("expected " + type + ", got '" + t.value() + "'");
    }

    private TemplateException error(String message) {
        return new TemplateException("template syntax error: " + message);
    }

    /** Whether the next tokens are {@code {% name}} for one of {@code names}. */
    private boolean atStatement(Set<String> names) {
        Token a = peek(), b = peek(1);
        return a != null && a.type() == Type.OPEN_STMT && b != null && b.type() == Type.NAME && names.contains(b.value());
    }

    // ---- statements ----

    /** Parses nodes until one of the {@code end} statements (not consumed) or the end of input. */
    private List<Node> block(Set<String> end) {
        List<Node> body = new ArrayList<>();
        while (i < tokens.size()) {
            if (!end.isEmpty() && atStatement(end)) return body;
            Token t = next();
            switch (t.type()) {
                case TEXT -> body.add(new Node.Text(t.value()));
                case COMMENT -> {
                }
                case OPEN_EXPR -> {
                    Node e = tuple(false);
                    expect(Type.CLOSE_EXPR);
                    body.add(new Node.Output(e));
                }
                case OPEN_STMT -> {
                    Node s = statement();
                    if (s != null) body.add(s);
                }
                default -> throw error("unexpected '" + t.value() + "'");
            }
        }
        if (!end.isEmpty()) throw error("missing {% " + String.join(" / ", end) + " %}");
        return body;
    }

    private void endTag(String name) {
        expect(Type.OPEN_STMT);
        expectName(name);
        expect(Type.CLOSE_STMT);
    }

    private Node statement() {
        String kw = name();
        switch (kw) {
            case "if" -> {
                return ifRest();
            }
            case "for" -> {
                Node target = assignTarget();
                expectName("in");
                Node iter = tuple(true);
                Node filter = null;
                if (atName("if")) {
                    next();
                    filter = expression(true);
                }
                boolean recursive = false;
                if (atName("recursive")) {
                    next();
                    recursive = true;
                }
                expect(Type.CLOSE_STMT);
                List<Node> body = block(Set.of("endfor", "else"));
                List<Node> orElse = List.of();
                if (atStatement(Set.of("else"))) {
                    next();
                    next();
                    expect(Type.CLOSE_STMT);
                    orElse = block(Set.of("endfor"));
                }
                endTag("endfor");
                return new Node.For(target, iter, filter, body, orElse, recursive);
            }
            case "set" -> {
                Node target = assignTarget();
                if (atOp("=")) {
                    next();
                    Node value = tuple(false);
                    expect(Type.CLOSE_STMT);
                    return new Node.Set(target, value, null);
                }
                Node.Filter filter = null;
                if (atOp("|")) filter = filterChain(null);
                expect(Type.CLOSE_STMT);
                List<Node> body = block(Set.of("endset"));
                endTag("endset");
                if (filter != null) body = List.of(new Node.FilterBlock(filter, body));
                return new Node.Set(target, null, body);
            }
            case "macro" -> {
                String name = name();
                List<String> params = new ArrayList<>();
                List<Node> defaults = new ArrayList<>();
                signature(params, defaults);
                expect(Type.CLOSE_STMT);
                List<Node> body = block(Set.of("endmacro"));
                endTag("endmacro");
                return new Node.MacroDef(name, params, defaults, body);
            }
            case "call" -> {
                List<String> params = new ArrayList<>();
                List<Node> defaults = new ArrayList<>();
                if (atOp("(")) signature(params, defaults);
                Node callee = expression(true);
                if (!(callee instanceof Node.Call call)) throw error("{% call %} needs a macro call");
                expect(Type.CLOSE_STMT);
                List<Node> body = block(Set.of("endcall"));
                endTag("endcall");
                return new Node.CallBlock(call, params, defaults, body);
            }
            case "filter" -> {
                Node.Filter f = filterChain(null, true);
                expect(Type.CLOSE_STMT);
                List<Node> body = block(Set.of("endfilter"));
                endTag("endfilter");
                return new Node.FilterBlock(f, body);
            }
            case "break" -> {
                expect(Type.CLOSE_STMT);
                return new Node.Break();
            }
            case "continue" -> {
                expect(Type.CLOSE_STMT);
                return new Node.Continue();
            }
            default -> throw error("unknown or unsupported statement '" + kw + "'");
        }
    }

    private Node ifRest() {
        Node test = tuple(false);
        expect(Type.CLOSE_STMT);
        List<Node> body = block(Set.of("elif", "else", "endif"));
        List<Node> orElse = List.of();
        if (atStatement(Set.of("elif"))) {
            next();
            next();
            orElse = List.of(ifRest());
            return new Node.If(test, body, orElse);
        }
        if (atStatement(Set.of("else"))) {
            next();
            next();
            expect(Type.CLOSE_STMT);
            orElse = block(Set.of("endif"));
        }
        endTag("endif");
        return new Node.If(test, body, orElse);
    }

    /** Macro parameters: {@code (a, b=1, c='x')}. */
    private void signature(List<String> params, List<Node> defaults) {
        expectOp("(");
        while (!atOp(")")) {
            if (!params.isEmpty()) expectOp(",");
            if (atOp(")")) break;
            String p = name();
            if (atOp("=")) {
                next();
                defaults.add(expression(true));
            } else {
                if (defaults.stream().anyMatch(java.util.Objects::nonNull)) {
                    throw error("a parameter without default follows one with a default");
                }
                defaults.add(null);
            }
            params.add(p);
        }
        expectOp(")");
        // defaults list aligned with params (null = none)
    }

    /** A name, a dotted namespace attribute, or a tuple of names. */
    private Node assignTarget() {
        List<Node> items = new ArrayList<>();
        boolean tuple = false;
        boolean paren = false;
        if (atOp("(")) {
            next();
            paren = true;
            tuple = true;
        }
        while (true) {
            String n = name();
            Node t = new Node.Name(n);
            if (atOp(".")) {
                next();
                t = new Node.Attr(t, name());
            }
            items.add(t);
            if (atOp(",")) {
                next();
                tuple = true;
                if (paren && atOp(")")) break;
                if (!paren && (atName("in") || atOp("="))) break;
                continue;
            }
            break;
        }
        if (paren) expectOp(")");
        return tuple ? new Node.ListLit(items, true) : items.getFirst();
    }

    // ---- expressions ----

    /** An expression or an implicit tuple {@code a, b}. */
    private Node tuple(boolean noCondExpr) {
        Node first = expression(!noCondExpr);
        if (!atOp(",")) return first;
        List<Node> items = new ArrayList<>(List.of(first));
        while (atOp(",")) {
            next();
            if (endOfTuple()) break;
            items.add(expression(!noCondExpr));
        }
        return new Node.ListLit(items, true);
    }

    private boolean endOfTuple() {
        Token t = peek();
        return t == null || t.type() == Type.CLOSE_EXPR || t.type() == Type.CLOSE_STMT || t.isOp(")") || t.isOp("]")
                || t.isOp("}") || t.isOp("=") || t.isName("in") || t.isName("if") || t.isName("recursive");
    }

    private Node expression(boolean withCondExpr) {
        return withCondExpr ? condExpr() : or();
    }

    private Node condExpr() {
        Node expr = or();
        while (atName("if")) {
            next();
            Node test = or();
            Node orElse = null;
            if (atName("else")) {
                next();
                orElse = condExpr();
            }
            expr = new Node.CondExpr(test, expr, orElse);
        }
        return expr;
    }

    private Node or() {
        Node left = and();
        while (atName("or")) {
            next();
            left = new Node.Binary("or", left, and());
        }
        return left;
    }

    private Node and() {
        Node left = not();
        while (atName("and")) {
            next();
            left = new Node.Binary("and", left, not());
        }
        return left;
    }

    private Node not() {
        if (atName("not")) {
            next();
            return new Node.Unary("not", not());
        }
        return compare();
    }

    private static final Set<String> CMP = Set.of("==", "!=", "<", ">", "<=", ">=");

    private Node compare() {
        Node first = math1();
        List<String> ops = new ArrayList<>();
        List<Node> rest = new ArrayList<>();
        while (true) {
            Token t = peek();
            if (t == null) break;
            if (t.type() == Type.OP && CMP.contains(t.value())) {
                next();
                ops.add(t.value());
            } else if (t.isName("in")) {
                next();
                ops.add("in");
            } else if (t.isName("not") && peek(1) != null && peek(1).isName("in")) {
                next();
                next();
                ops.add("notin");
            } else {
                break;
            }
            rest.add(math1());
        }
        return ops.isEmpty() ? first : new Node.Compare(first, ops, rest);
    }

    private Node math1() {
        Node left = concat();
        while (atOp("+") || atOp("-")) {
            String op = next().value();
            left = new Node.Binary(op, left, concat());
        }
        return left;
    }

    private Node concat() {
        Node left = math2();
        while (atOp("~")) {
            next();
            left = new Node.Binary("~", left, math2());
        }
        return left;
    }

    private Node math2() {
        Node left = pow();
        while (atOp("*") || atOp("/") || atOp("//") || atOp("%")) {
            String op = next().value();
            left = new Node.Binary(op, left, pow());
        }
        return left;
    }

    private Node pow() {
        Node left = unary(true);
        while (atOp("**")) {
            next();
            left = new Node.Binary("**", left, unary(true));
        }
        return left;
    }

    private Node unary(boolean withFilter) {
        Node node;
        if (atOp("-") || atOp("+")) {
            String op = next().value();
            node = new Node.Unary(op, unary(false));
        } else {
            node = primary();
        }
        node = postfix(node);
        if (withFilter) node = filterExpr(node);
        return node;
    }

    private Node primary() {
        Token t = next();
        switch (t.type()) {
            case NAME -> {
                return switch (t.value()) {
                    case "true", "True" -> new Node.Const(Boolean.TRUE);
                    case "false", "False" -> new Node.Const(Boolean.FALSE);
                    case "none", "None" -> new Node.Const(null);
                    default -> new Node.Name(t.value());
                };
            }
            case STRING -> {
                StringBuilder sb = new StringBuilder(t.value());
                while (peek() != null && peek().type() == Type.STRING) sb.append(next().value());
                return new Node.Const(sb.toString());
            }
            case INT -> {
                try {
                    return new Node.Const(Long.parseLong(t.value()));
                } catch (NumberFormatException e) {
                    return new Node.Const(Double.parseDouble(t.value()));
                }
            }
            case FLOAT -> {
                return new Node.Const(Double.parseDouble(t.value()));
            }
            case OP -> {
                switch (t.value()) {
                    case "(" -> {
                        if (atOp(")")) {
                            next();
                            return new Node.ListLit(List.of(), true);
                        }
                        Node first = expression(true);
                        if (atOp(")")) {
                            next();
                            return first;
                        }
                        List<Node> items = new ArrayList<>(List.of(first));
                        while (atOp(",")) {
                            next();
                            if (atOp(")")) break;
                            items.add(expression(true));
                        }
                        expectOp(")");
                        return new Node.ListLit(items, true);
                    }
                    case "[" -> {
                        List<Node> items = new ArrayList<>();
                        while (!atOp("]")) {
                            if (!items.isEmpty()) expectOp(",");
                            if (atOp("]")) break;
                            items.add(expression(true));
                        }
                        expectOp("]");
                        return new Node.ListLit(items, false);
                    }
                    case "{" -> {
                        List<Node> keys = new ArrayList<>(), values = new ArrayList<>();
                        while (!atOp("}")) {
                            if (!keys.isEmpty()) expectOp(",");
                            if (atOp("}")) break;
                            keys.add(expression(true));
                            expectOp(":");
                            values.add(expression(true));
                        }
                        expectOp("}");
                        return new Node.DictLit(keys, values);
                    }
                    default -> throw error("unexpected '" + t.value() + "'");
                }
            }
            default -> throw error("unexpected '" + t.value() + "'");
        }
    }

    private Node postfix(Node node) {
        while (true) {
            if (atOp(".")) {
                next();
                Token t = next();
                if (t.type() == Type.NAME) node = new Node.Attr(node, t.value());
                else if (t.type() == Type.INT) node = new Node.Item(node, new Node.Const(Long.parseLong(t.value())));
                else throw error("expected an attribute name after '.'");
            } else if (atOp("[")) {
                next();
                node = subscript(node);
            } else if (atOp("(")) {
                node = call(node);
            } else {
                return node;
            }
        }
    }

    private Node subscript(Node target) {
        Node[] parts = new Node[3];
        int part = 0;
        boolean slice = false;
        while (!atOp("]")) {
            if (atOp(":")) {
                next();
                slice = true;
                part++;
                if (part > 2) throw error("a slice has at most three parts");
                continue;
            }
            if (parts[part] != null) throw error("expected ':' or ']' in a subscript");
            parts[part] = expression(true);
        }
        expectOp("]");
        if (!slice) {
            if (parts[0] == null) throw error("empty subscript");
            return new Node.Item(target, parts[0]);
        }
        return new Node.Slice(target, parts[0], parts[1], parts[2]);
    }

    private Node.Call call(Node fn) {
        expectOp("(");
        List<Node> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Node> kwValues = new ArrayList<>();
        Node star = null, starStar = null;
        boolean first = true;
        while (!atOp(")")) {
            if (!first) {
                expectOp(",");
                if (atOp(")")) break;
            }
            first = false;
            if (atOp("*")) {
                next();
                star = expression(true);
            } else if (atOp("**")) {
                next();
                starStar = expression(true);
            } else if (peek() != null && peek().type() == Type.NAME && peek(1) != null && peek(1).isOp("=")) {
                kwNames.add(name());
                next();
                kwValues.add(expression(true));
            } else {
                if (!kwNames.isEmpty()) throw error("a positional argument follows a keyword argument");
                args.add(expression(true));
            }
        }
        expectOp(")");
        return new Node.Call(fn, args, kwNames, kwValues, star, starStar);
    }

    private Node filterExpr(Node node) {
        while (true) {
            if (atOp("|")) {
                node = filterChain(node);
            } else if (atName("is")) {
                next();
                boolean negated = false;
                if (atName("not")) {
                    next();
                    negated = true;
                }
                String name = name();
                while (atOp(".")) {
                    next();
                    name += "." + name();
                }
                List<Node> args = new ArrayList<>();
                Token t = peek();
                if (t != null && t.isOp("(")) {
                    Node.Call c = call(new Node.Const(null));
                    args.addAll(c.args());
                } else if (t != null && (t.type() == Type.NAME || t.type() == Type.STRING || t.type() == Type.INT
                        || t.type() == Type.FLOAT || t.isOp("[") || t.isOp("{"))
                        && !t.isName("else") && !t.isName("or") && !t.isName("and")) {
                    Node arg = postfix(primary());
                    args.add(arg);
                }
                node = new Node.Test(node, name, args, negated);
            } else if (atOp("(")) {
                node = call(node);
            } else {
                return node;
            }
        }
    }

    /** One or more {@code |filter(args)}; {@code target} null for filter blocks. */
    private Node.Filter filterChain(Node target) {
        return filterChain(target, false);
    }

    private Node.Filter filterChain(Node target, boolean firstWithoutPipe) {
        Node.Filter f = null;
        Node operand = target;
        while (atOp("|") || firstWithoutPipe) {
            if (!firstWithoutPipe) next();
            firstWithoutPipe = false;
            String name = name();
            while (atOp(".")) {
                next();
                name += "." + name();
            }
            List<Node> args = List.of();
            List<String> kwNames = List.of();
            List<Node> kwValues = List.of();
            if (atOp("(")) {
                Node.Call c = call(new Node.Const(null));
                args = c.args();
                kwNames = c.kwNames();
                kwValues = c.kwValues();
            }
            f = new Node.Filter(operand, name, args, kwNames, kwValues);
            operand = f;
        }
        return f;
    }
}
