package io.moe4j.server.jinja;

import io.moe4j.server.jinja.Values.Callable;
import io.moe4j.server.jinja.Values.Loop;
import io.moe4j.server.jinja.Values.Namespace;
import io.moe4j.server.jinja.Values.Undefined;

import java.time.Clock;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A compiled Jinja template, rendered with Jinja2's semantics as Hugging Face configures it for chat templates:
 * {@code trim_blocks}, {@code lstrip_blocks}, loop controls ({@code break}/{@code continue}), Python's string,
 * list and dict methods ({@code strip}, {@code split}, {@code startswith}, {@code items} ...), slicing with steps,
 * {@code namespace}, macros and call blocks, and the globals {@code raise_exception}, {@code strftime_now},
 * {@code range}. Undefined values print as nothing and are false; using them otherwise is an error.
 *
 * <pre>{@code
 * Template t = Template.compile(chatTemplate);
 * String prompt = t.render(Map.of("messages", messages, "add_generation_prompt", true, "bos_token", "<s>"));
 * }</pre>
 * Thread-safe: one compiled template can render concurrently.
 */
public final class Template {
    private static final int MAX_DEPTH = 200;
    private static final long MAX_OUTPUT = 64L << 20;

    private final List<Node> body;

    private Template(List<Node> body) {
        this.body = body;
    }

    /** Parses a template; throws {@link TemplateException} for a syntax error. */
    public static Template compile(String source) {
        return new Template(Parser.parse(source));
    }

    /** Renders with the current time for {@code strftime_now}. */
    public String render(Map<String, ?> context) {
        return render(context, Clock.systemDefaultZone());
    }

    /**
     * Renders with {@code context} as the template's variables (JSON-like Java values: maps, lists, strings,
     * numbers, booleans, null). Throws {@link TemplateException} (or its {@code Raised}) on failure.
     */
    public String render(Map<String, ?> context, Clock clock) {
        Scope root = new Scope(null);
        root.vars.put("range", (Callable) Template::range);
        root.vars.put("namespace", (Callable) (args, kw) -> {
            Namespace ns = new Namespace();
            if (!args.isEmpty()) {
                if (args.getFirst() instanceof Map<?, ?> m) m.forEach((k, v) -> ns.attrs.put(String.valueOf(k), v));
                else throw new TemplateException("namespace() takes a mapping");
            }
            ns.attrs.putAll(kw);
            return ns;
        });
        root.vars.put("dict", (Callable) (args, kw) -> {
            Map<String, Object> m = new LinkedHashMap<>();
            if (!args.isEmpty() && args.getFirst() instanceof Map<?, ?> src) src.forEach((k, v) -> m.put(String.valueOf(k), v));
            m.putAll(kw);
            return m;
        });
        root.vars.put("raise_exception", (Callable) (args, kw) -> {
            throw new TemplateException.Raised(args.isEmpty() ? "raise_exception called" : Values.str(args.getFirst()));
        });
        root.vars.put("strftime_now", (Callable) (args, kw) ->
                Strftime.format(args.isEmpty() ? "%Y-%m-%d" : Values.str(args.getFirst()), ZonedDateTime.now(clock)));
        for (Map.Entry<String, ?> e : context.entrySet()) root.vars.put(e.getKey(), Values.of(e.getValue()));
        StringBuilder out = new StringBuilder();
        try {
            new Interpreter(root).exec(body, root, out);
        } catch (StackOverflowError e) {
            throw new TemplateException("the template recursed too deeply");
        } catch (ClassCastException | IndexOutOfBoundsException | ArithmeticException | NumberFormatException e) {
            throw new TemplateException("template error: " + e.getMessage());
        }
        return out.toString();
    }

    private static Object range(List<Object> args, Map<String, Object> kw) {
        long start = 0, stop, step = 1;
        if (args.size() == 1) {
            stop = Values.toLong(args.get(0));
        } else if (args.size() >= 2) {
            start = Values.toLong(args.get(0));
            stop = Values.toLong(args.get(1));
            if (args.size() > 2) step = Values.toLong(args.get(2));
        } else {
            throw new TemplateException("range expected at least 1 argument");
        }
        if (step == 0) throw new TemplateException("range() arg 3 must not be zero");
        List<Object> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            out.add(i);
            if (out.size() > 1_000_000) throw new TemplateException("range too large");
        }
        return out;
    }

    /** Variables of one level: the template, a for loop, a macro call. */
    static final class Scope {
        final Map<String, Object> vars = new HashMap<>();
        final Scope parent;

        Scope(Scope parent) {
            this.parent = parent;
        }

        Object lookup(String name) {
            for (Scope s = this; s != null; s = s.parent) {
                if (s.vars.containsKey(name)) return s.vars.get(name);
            }
            return new Undefined(name);
        }
    }

    private static final class BreakLoop extends RuntimeException {
        BreakLoop() {
            super(null, null, false, false);
        }
    }

    private static final class ContinueLoop extends RuntimeException {
        ContinueLoop() {
            super(null, null, false, false);
        }
    }

    private static final BreakLoop BREAK = new BreakLoop();
    private static final ContinueLoop CONTINUE = new ContinueLoop();

    /** Executes statements and evaluates expressions. */
    static final class Interpreter {
        final Scope root;
        private int depth;

        Interpreter(Scope root) {
            this.root = root;
        }

        void exec(List<Node> nodes, Scope scope, StringBuilder out) {
            for (Node n : nodes) {
                exec(n, scope, out);
                if (out.length() > MAX_OUTPUT) throw new TemplateException("the template output is too large");
            }
        }

        private void exec(Node n, Scope scope, StringBuilder out) {
            switch (n) {
                case Node.Text t -> out.append(t.text());
                case Node.Output o -> out.append(Values.str(eval(o.expr(), scope)));
                case Node.If f -> exec(Values.truthy(eval(f.test(), scope)) ? f.body() : f.orElse(), scope, out);
                case Node.For f -> forLoop(f, eval(f.iterable(), scope), scope, out, 0);
                case Node.Set s -> {
                    Object value;
                    if (s.value() != null) {
                        value = eval(s.value(), scope);
                    } else {
                        StringBuilder sb = new StringBuilder();
                        exec(s.body(), scope, sb);
                        value = sb.toString();
                    }
                    assign(s.target(), value, scope);
                }
                case Node.MacroDef m -> scope.vars.put(m.name(), macro(m.params(), m.defaults(), m.body(), scope, m.name()));
                case Node.CallBlock c -> {
                    Callable caller = macro(c.params(), c.defaults(), c.body(), scope, "caller");
                    Object fn = eval(c.call().fn(), scope);
                    List<Object> args = new ArrayList<>();
                    Map<String, Object> kw = new LinkedHashMap<>();
                    arguments(c.call(), scope, args, kw);
                    kw.put("caller", caller);
                    out.append(Values.str(call(fn, args, kw)));
                }
                case Node.FilterBlock f -> {
                    StringBuilder sb = new StringBuilder();
                    exec(f.body(), scope, sb);
                    out.append(Values.str(applyFilterChain(f.filter(), sb.toString(), scope)));
                }
                case Node.Break b -> throw BREAK;
                case Node.Continue c -> throw CONTINUE;
                default -> throw new TemplateException("not a statement: " + n);
            }
        }

        private void forLoop(Node.For f, Object iterable, Scope scope, StringBuilder out, int depth0) {
            List<Object> all = Values.iterate(iterable);
            Scope loopScope = new Scope(scope);
            List<Object> items;
            if (f.filter() != null) {
                items = new ArrayList<>();
                for (Object item : all) {
                    Scope probe = new Scope(scope);
                    assign(f.target(), item, probe);
                    if (Values.truthy(eval(f.filter(), probe))) items.add(item);
                }
            } else {
                items = all;
            }
            Loop loop = new Loop();
            loop.items = items;
            loop.length = items.size();
            loop.depth0 = depth0;
            if (f.recursive()) {
                loop.recurse = (args, kw) -> {
                    StringBuilder sb = new StringBuilder();
                    forLoop(f, args.isEmpty() ? List.of() : args.getFirst(), scope, sb, depth0 + 1);
                    return sb.toString();
                };
            }
            for (int i = 0; i < items.size(); i++) {
                loop.index0 = i;
                loopScope.vars.put("loop", loop);
                assign(f.target(), items.get(i), loopScope);
                try {
                    exec(f.body(), loopScope, out);
                } catch (ContinueLoop c) {
                    // next item
                } catch (BreakLoop b) {
                    break;
                }
            }
            if (items.isEmpty()) exec(f.orElse(), loopScope, out);
        }

        private void assign(Node target, Object value, Scope scope) {
            switch (target) {
                case Node.Name n -> scope.vars.put(n.name(), value);
                case Node.Attr a -> {
                    Object obj = eval(a.target(), scope);
                    if (!(obj instanceof Namespace ns)) {
                        throw new TemplateException("cannot assign attribute on non-namespace object");
                    }
                    ns.attrs.put(a.name(), value);
                }
                case Node.ListLit l -> {
                    List<Object> items = Values.iterate(value);
                    if (items.size() != l.items().size()) {
                        throw new TemplateException((items.size() < l.items().size() ? "not enough" : "too many")
                                + " values to unpack (expected " + l.items().size() + ", got " + items.size() + ")");
                    }
                    for (int i = 0; i < items.size(); i++) assign(l.items().get(i), items.get(i), scope);
                }
                default -> throw new TemplateException("cannot assign to " + target);
            }
        }

        private Callable macro(List<String> params, List<Node> defaults, List<Node> body, Scope defScope, String name) {
            boolean usesVarargs = uses(body, "varargs"), usesKwargs = uses(body, "kwargs"), usesCaller = uses(body, "caller");
            return (args, kw) -> {
                if (++depth > MAX_DEPTH) throw new TemplateException("macro recursion too deep");
                try {
                    Scope s = new Scope(defScope);
                    Map<String, Object> rest = new LinkedHashMap<>(kw);
                    for (int i = 0; i < params.size(); i++) {
                        String p = params.get(i);
                        if (i < args.size()) {
                            s.vars.put(p, args.get(i));
                            if (rest.containsKey(p)) throw new TemplateException("macro '" + name + "' got multiple values for '" + p + "'");
                        } else if (rest.containsKey(p)) {
                            s.vars.put(p, rest.remove(p));
                        } else {
                            s.vars.put(p, new Undefined(p));
                        }
                    }
                    for (int i = 0; i < params.size(); i++) {
                        if (i >= args.size() && !kw.containsKey(params.get(i)) && defaults.get(i) != null) {
                            s.vars.put(params.get(i), eval(defaults.get(i), s));
                        }
                    }
                    Object caller = rest.remove("caller");
                    if (caller != null) s.vars.put("caller", caller);
                    else if (usesCaller) s.vars.put("caller", new Undefined("caller"));
                    if (args.size() > params.size()) {
                        if (!usesVarargs) throw new TemplateException("macro '" + name + "' takes not more than " + params.size() + " argument(s)");
                        s.vars.put("varargs", new ArrayList<>(args.subList(params.size(), args.size())));
                    } else if (usesVarargs) {
                        s.vars.put("varargs", new ArrayList<>());
                    }
                    if (!rest.isEmpty() && !usesKwargs) {
                        throw new TemplateException("macro '" + name + "' takes no keyword argument '" + rest.keySet().iterator().next() + "'");
                    }
                    if (usesKwargs) s.vars.put("kwargs", rest);
                    StringBuilder sb = new StringBuilder();
                    exec(body, s, sb);
                    return sb.toString();
                } finally {
                    depth--;
                }
            };
        }

        /** Whether a macro body reads {@code name} (Jinja2 only binds varargs/kwargs/caller when used). */
        private static boolean uses(List<Node> body, String name) {
            for (Node n : body) if (usesNode(n, name)) return true;
            return false;
        }

        private static boolean usesNode(Node n, String name) {
            if (n == null) return false;
            return switch (n) {
                case Node.Name x -> x.name().equals(name);
                case Node.Text x -> false;
                case Node.Const x -> false;
                case Node.Output x -> usesNode(x.expr(), name);
                case Node.If x -> usesNode(x.test(), name) || uses(x.body(), name) || uses(x.orElse(), name);
                case Node.For x -> usesNode(x.iterable(), name) || usesNode(x.filter(), name) || uses(x.body(), name) || uses(x.orElse(), name);
                case Node.Set x -> usesNode(x.value(), name) || (x.body() != null && uses(x.body(), name));
                case Node.MacroDef x -> false;
                case Node.CallBlock x -> usesNode(x.call(), name) || uses(x.body(), name);
                case Node.FilterBlock x -> usesNode(x.filter(), name) || uses(x.body(), name);
                case Node.ListLit x -> uses(x.items(), name);
                case Node.DictLit x -> uses(x.keys(), name) || uses(x.values(), name);
                case Node.Attr x -> usesNode(x.target(), name);
                case Node.Item x -> usesNode(x.target(), name) || usesNode(x.key(), name);
                case Node.Slice x -> usesNode(x.target(), name) || usesNode(x.start(), name) || usesNode(x.stop(), name) || usesNode(x.step(), name);
                case Node.Call x -> usesNode(x.fn(), name) || uses(x.args(), name) || uses(x.kwValues(), name)
                        || usesNode(x.starArgs(), name) || usesNode(x.starKwargs(), name);
                case Node.Filter x -> usesNode(x.target(), name) || uses(x.args(), name) || uses(x.kwValues(), name);
                case Node.Test x -> usesNode(x.target(), name) || uses(x.args(), name);
                case Node.Unary x -> usesNode(x.operand(), name);
                case Node.Binary x -> usesNode(x.left(), name) || usesNode(x.right(), name);
                case Node.Compare x -> usesNode(x.first(), name) || uses(x.rest(), name);
                case Node.CondExpr x -> usesNode(x.test(), name) || usesNode(x.then(), name) || usesNode(x.orElse(), name);
                case Node.Break x -> false;
                case Node.Continue x -> false;
            };
        }

        // ---- expressions ----

        Object eval(Node n, Scope scope) {
            switch (n) {
                case Node.Const c -> {
                    return c.value();
                }
                case Node.Name nm -> {
                    return scope.lookup(nm.name());
                }
                case Node.ListLit l -> {
                    List<Object> out = new ArrayList<>(l.items().size());
                    for (Node item : l.items()) out.add(eval(item, scope));
                    return out;
                }
                case Node.DictLit d -> {
                    Map<String, Object> m = new LinkedHashMap<>();
                    for (int i = 0; i < d.keys().size(); i++) {
                        Object k = eval(d.keys().get(i), scope);
                        m.put(k instanceof String s ? s : Values.str(k), eval(d.values().get(i), scope));
                    }
                    return m;
                }
                case Node.Attr a -> {
                    return Access.getattr(eval(a.target(), scope), a.name());
                }
                case Node.Item it -> {
                    return Access.getitem(eval(it.target(), scope), eval(it.key(), scope));
                }
                case Node.Slice s -> {
                    Object target = eval(s.target(), scope);
                    return Access.slice(target, s.start() == null ? null : eval(s.start(), scope),
                            s.stop() == null ? null : eval(s.stop(), scope), s.step() == null ? null : eval(s.step(), scope));
                }
                case Node.Call c -> {
                    Object fn = eval(c.fn(), scope);
                    List<Object> args = new ArrayList<>();
                    Map<String, Object> kw = new LinkedHashMap<>();
                    arguments(c, scope, args, kw);
                    return call(fn, args, kw);
                }
                case Node.Filter f -> {
                    return applyFilterChain(f, null, scope);
                }
                case Node.Test t -> {
                    Object v = eval(t.target(), scope);
                    List<Object> args = new ArrayList<>();
                    for (Node a : t.args()) args.add(eval(a, scope));
                    boolean r = Filters.test(t.name(), v, args, scope);
                    return t.negated() != r;
                }
                case Node.Unary u -> {
                    Object v = eval(u.operand(), scope);
                    return switch (u.op()) {
                        case "not" -> !Values.truthy(v);
                        case "-" -> {
                            if (v instanceof Long l) yield -l;
                            if (v instanceof Double d) yield -d;
                            if (v instanceof Boolean b) yield b ? -1L : 0L;
                            throw new TemplateException("bad operand type for unary -: '" + Values.typeName(v) + "'");
                        }
                        default -> {
                            if (v instanceof Boolean b) yield b ? 1L : 0L;
                            if (v instanceof Long || v instanceof Double) yield v;
                            throw new TemplateException("bad operand type for unary +: '" + Values.typeName(v) + "'");
                        }
                    };
                }
                case Node.Binary b -> {
                    if (b.op().equals("and")) {
                        Object l = eval(b.left(), scope);
                        return Values.truthy(l) ? eval(b.right(), scope) : l;
                    }
                    if (b.op().equals("or")) {
                        Object l = eval(b.left(), scope);
                        return Values.truthy(l) ? l : eval(b.right(), scope);
                    }
                    return Operators.binary(b.op(), eval(b.left(), scope), eval(b.right(), scope));
                }
                case Node.Compare c -> {
                    Object left = eval(c.first(), scope);
                    for (int i = 0; i < c.ops().size(); i++) {
                        Object right = eval(c.rest().get(i), scope);
                        if (!Operators.compare(c.ops().get(i), left, right)) return false;
                        left = right;
                    }
                    return true;
                }
                case Node.CondExpr c -> {
                    if (Values.truthy(eval(c.test(), scope))) return eval(c.then(), scope);
                    return c.orElse() == null ? new Undefined("") : eval(c.orElse(), scope);
                }
                default -> throw new TemplateException("not an expression: " + n);
            }
        }

        private void arguments(Node.Call c, Scope scope, List<Object> args, Map<String, Object> kw) {
            for (Node a : c.args()) args.add(eval(a, scope));
            if (c.starArgs() != null) args.addAll(Values.iterate(eval(c.starArgs(), scope)));
            for (int i = 0; i < c.kwNames().size(); i++) kw.put(c.kwNames().get(i), eval(c.kwValues().get(i), scope));
            if (c.starKwargs() != null) {
                Object m = eval(c.starKwargs(), scope);
                if (!(m instanceof Map<?, ?> map)) throw new TemplateException("argument after ** must be a mapping");
                map.forEach((k, v) -> kw.put(String.valueOf(k), v));
            }
        }

        Object call(Object fn, List<Object> args, Map<String, Object> kw) {
            if (fn instanceof Callable c) return c.call(args, kw);
            if (fn instanceof Loop loop && loop.recurse != null) return loop.recurse.call(args, kw);
            if (fn instanceof Undefined u) throw new TemplateException("'" + u.name() + "' is undefined");
            throw new TemplateException("'" + Values.typeName(fn) + "' object is not callable");
        }

        /** Applies a chain of filters; the innermost filter's target null means {@code blockInput}. */
        private Object applyFilterChain(Node.Filter f, Object blockInput, Scope scope) {
            Object operand;
            if (f.target() == null) operand = blockInput;
            else if (f.target() instanceof Node.Filter inner) operand = applyFilterChain(inner, blockInput, scope);
            else operand = eval(f.target(), scope);
            List<Object> args = new ArrayList<>();
            for (Node a : f.args()) args.add(eval(a, scope));
            Map<String, Object> kw = new LinkedHashMap<>();
            for (int i = 0; i < f.kwNames().size(); i++) kw.put(f.kwNames().get(i), eval(f.kwValues().get(i), scope));
            return Filters.filter(f.name(), operand, args, kw, this, scope);
        }
    }
}
