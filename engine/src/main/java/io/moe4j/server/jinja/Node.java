package io.moe4j.server.jinja;

import java.util.List;

/** The syntax tree of a template: statements and expressions. */
sealed interface Node {
    // ---- statements ----
    record Text(String text) implements Node {
    }

    record Output(Node expr) implements Node {
    }

    record If(Node test, List<Node> body, List<Node> orElse) implements Node {
    }

    record For(Node target, Node iterable, Node filter, List<Node> body, List<Node> orElse, boolean recursive) implements Node {
    }

    record Set(Node target, Node value, List<Node> body) implements Node {
    }

    record MacroDef(String name, List<String> params, List<Node> defaults, List<Node> body) implements Node {
    }

    record CallBlock(Call call, List<String> params, List<Node> defaults, List<Node> body) implements Node {
    }

    record FilterBlock(Filter filter, List<Node> body) implements Node {
    }

    record Break() implements Node {
    }

    record Continue() implements Node {
    }

    // ---- expressions ----
    record Const(Object value) implements Node {
    }

    record Name(String name) implements Node {
    }

    record ListLit(List<Node> items, boolean tuple) implements Node {
    }

    record DictLit(List<Node> keys, List<Node> values) implements Node {
    }

    record Attr(Node target, String name) implements Node {
    }

    record Item(Node target, Node key) implements Node {
    }

    record Slice(Node target, Node start, Node stop, Node step) implements Node {
    }

    record Call(Node fn, List<Node> args, List<String> kwNames, List<Node> kwValues, Node starArgs, Node starKwargs) implements Node {
    }

    /** {@code target} null: a filter block's own body is the operand. */
    record Filter(Node target, String name, List<Node> args, List<String> kwNames, List<Node> kwValues) implements Node {
    }

    record Test(Node target, String name, List<Node> args, boolean negated) implements Node {
    }

    record Unary(String op, Node operand) implements Node {
    }

    record Binary(String op, Node left, Node right) implements Node {
    }

    record Compare(Node first, List<String> ops, List<Node> rest) implements Node {
    }

    record CondExpr(Node test, Node then, Node orElse) implements Node {
    }
}
