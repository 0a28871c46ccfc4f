package io.moe4j.server.jinja;

import io.moe4j.server.jinja.Template.Interpreter;
import io.moe4j.server.jinja.Template.Scope;
import io.moe4j.server.jinja.Values.Callable;
import io.moe4j.server.jinja.Values.Namespace;
import io.moe4j.server.jinja.Values.Undefined;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Jinja2's built-in filters and tests (those chat templates use), with Hugging Face's {@code tojson}. */
final class Filters {
    private Filters() {
    }

    private static Object arg(List<Object> args, Map<String, Object> kw, int i, String name, Object fallback) {
        if (i < args.size()) return args.get(i);
        return kw.containsKey(name) ? kw.get(name) : fallback;
    }

    private static String s(Object v) {
        if (v instanceof Undefined) return "";
        return Values.str(v);
    }

    static Object filter(String name, Object v, List<Object> args, Map<String, Object> kw, Interpreter in, Scope scope) {
        switch (name) {
            case "tojson" -> {
                Object indent = arg(args, kw, 0, "indent", null);
                Object seps = kw.get("separators");
                boolean sortKeys = Values.truthy(kw.get("sort_keys"));
                boolean ascii = Values.truthy(kw.get("ensure_ascii"));
                Integer ind = indent == null ? null : (int) Values.toLong(indent);
                String item = ind == null ? ", " : ",", key = ": ";
                if (seps instanceof List<?> l && l.size() == 2) {
                    item = Values.str(l.get(0));
                    key = Values.str(l.get(1));
                }
                return Json.dump(v, ind, item, key, sortKeys, ascii);
            }
            case "safe", "string" -> {
                return name.equals("string") ? s(v) : v;
            }
            case "e", "escape", "forceescape" -> {
                return s(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&#34;").replace("'", "&#39;");
            }
            case "trim" -> {
                return Access.strip(s(v), arg(args, kw, 0, "chars", null), true, true);
            }
            case "upper" -> {
                return s(v).toUpperCase();
            }
            case "lower" -> {
                return s(v).toLowerCase();
            }
            case "title" -> {
                return Access.title(s(v));
            }
            case "capitalize" -> {
                return Access.capitalize(s(v));
            }
            case "length", "count" -> {
                return (long) Values.length(v);
            }
            case "wordcount" -> {
                return (long) Access.split(s(v), null, -1).size();
            }
            case "default", "d" -> {
                Object def = arg(args, kw, 0, "default_value", "");
                boolean bool = Values.truthy(arg(args, kw, 1, "boolean", false));
                return v instanceof Undefined || (bool && !Values.truthy(v)) ? def : v;
            }
            case "first" -> {
                List<Object> l = Values.iterate(v);
                return l.isEmpty() ? new Undefined("first") : l.getFirst();
            }
            case "last" -> {
                List<Object> l = Values.iterate(v);
                return l.isEmpty() ? new Undefined("last") : l.getLast();
            }
            case "list" -> {
                return Values.iterate(v);
            }
            case "reverse" -> {
                if (v instanceof String str) return new StringBuilder(str).reverse().toString();
                List<Object> l = Values.iterate(v);
                java.util.Collections.reverse(l);
                return l;
            }
            case "join" -> {
                String sep = s(arg(args, kw, 0, "d", ""));
                Object attr = arg(args, kw, 1, "attribute", null);
                StringBuilder sb = new StringBuilder();
                List<Object> items = Values.iterate(v);
                for (int i = 0; i < items.size(); i++) {
                    if (i > 0) sb.append(sep);
                    Object item = items.get(i);
                    if (attr != null) item = attribute(item, Values.str(attr));
                    sb.append(s(item));
                }
                return sb.toString();
            }
            case "replace" -> {
                Object count = arg(args, kw, 2, "count", null);
                return Access.replace(s(v), s(args.get(0)), s(args.get(1)), count == null ? -1 : Values.toLong(count));
            }
            case "indent" -> {
                Object w = arg(args, kw, 0, "width", 4L);
                String pad = w instanceof String ws ? ws : " ".repeat((int) Values.toLong(w));
                boolean first = Values.truthy(arg(args, kw, 1, "first", false));
                boolean blank = Values.truthy(arg(args, kw, 2, "blank", false));
                String text = s(v);
                String[] lines = text.split("\n", -1);
                StringBuilder sb = new StringBuilder();
                for (int i = 0; i < lines.length; i++) {
                    if (i > 0) sb.append('\n');
                    boolean indentIt = (i > 0 || first) && (blank || !Access.strip(lines[i], null, true, true).isEmpty());
                    if (indentIt) sb.append(pad);
                    sb.append(lines[i]);
                }
                return sb.toString();
            }
            case "int" -> {
                Object def = arg(args, kw, 0, "default", 0L);
                if (v instanceof Long || v instanceof Boolean) return Values.toLong(v);
                if (v instanceof Double d) return (long) d.doubleValue();
                try {
                    return Long.parseLong(s(v).trim().replace("_", ""));
                } catch (NumberFormatException e) {
                    try {
                        return (long) Double.parseDouble(s(v).trim());
                    } catch (NumberFormatException e2) {
                        return def;
                    }
                }
            }
            case "float" -> {
                Object def = arg(args, kw, 0, "default", 0.0);
                if (Values.isNumber(v)) return Values.toDouble(v);
                try {
                    return Double.parseDouble(s(v).trim());
                } catch (NumberFormatException e) {
                    return def;
                }
            }
            case "abs" -> {
                if (v instanceof Long l) return Math.abs(l);
                return Math.abs(Values.toDouble(v));
            }
            case "round" -> {
                long precision = Values.toLong(arg(args, kw, 0, "precision", 0L));
                String method = s(arg(args, kw, 1, "method", "common"));
                double x = Values.toDouble(v), f = Math.pow(10, precision);
                double r = switch (method) {
                    case "ceil" -> Math.ceil(x * f) / f;
                    case "floor" -> Math.floor(x * f) / f;
                    default -> Math.round(x * f) / f;
                };
                return r;
            }
            case "sum" -> {
                Object attr = arg(args, kw, 0, "attribute", null);
                Object total = arg(args, kw, 1, "start", 0L);
                for (Object o : Values.iterate(v)) total = Operators.binary("+", total, attr == null ? o : attribute(o, s(attr)));
                return total;
            }
            case "min", "max" -> {
                List<Object> l = Values.iterate(v);
                if (l.isEmpty()) return new Undefined(name);
                boolean cs = Values.truthy(arg(args, kw, 0, "case_sensitive", false));
                Object attr = arg(args, kw, 1, "attribute", null);
                Object best = l.getFirst();
                for (Object o : l) {
                    Object a = attr == null ? o : attribute(o, s(attr)), b = attr == null ? best : attribute(best, s(attr));
                    int c = Values.ordering(cs).compare(a, b);
                    if (name.equals("min") ? c < 0 : c > 0) best = o;
                }
                return best;
            }
            case "unique" -> {
                List<Object> out = new ArrayList<>();
                for (Object o : Values.iterate(v)) {
                    boolean seen = false;
                    for (Object x : out) {
                        if (Values.equal(x, o)) {
                            seen = true;
                            break;
                        }
                    }
                    if (!seen) out.add(o);
                }
                return out;
            }
            case "sort" -> {
                boolean reverse = Values.truthy(arg(args, kw, 0, "reverse", false));
                boolean cs = Values.truthy(arg(args, kw, 1, "case_sensitive", false));
                Object attr = arg(args, kw, 2, "attribute", null);
                List<Object> l = Values.iterate(v);
                java.util.Comparator<Object> cmp = Values.ordering(cs);
                if (attr != null) {
                    java.util.Comparator<Object> base = cmp;
                    String a = s(attr);
                    cmp = (x, y) -> base.compare(attribute(x, a), attribute(y, a));
                }
                l.sort(reverse ? cmp.reversed() : cmp);
                return l;
            }
            case "dictsort" -> {
                boolean cs = Values.truthy(arg(args, kw, 0, "case_sensitive", false));
                String by = s(arg(args, kw, 1, "by", "key"));
                boolean reverse = Values.truthy(arg(args, kw, 2, "reverse", false));
                if (!(v instanceof Map<?, ?> m)) throw new TemplateException("dictsort needs a mapping");
                List<Object> pairs = new ArrayList<>();
                m.forEach((k, val) -> {
                    List<Object> p = new ArrayList<>(2);
                    p.add(k);
                    p.add(val);
                    pairs.add(p);
                });
                int idx = by.equals("value") ? 1 : 0;
                java.util.Comparator<Object> cmp = (x, y) -> Values.ordering(cs).compare(((List<?>) x).get(idx), ((List<?>) y).get(idx));
                pairs.sort(reverse ? cmp.reversed() : cmp);
                return pairs;
            }
            case "items" -> {
                if (v instanceof Undefined) return new ArrayList<>();
                if (!(v instanceof Map<?, ?> m)) throw new TemplateException("items filter needs a mapping, got " + Values.typeName(v));
                List<Object> pairs = new ArrayList<>();
                m.forEach((k, val) -> {
                    List<Object> p = new ArrayList<>(2);
                    p.add(k);
                    p.add(val);
                    pairs.add(p);
                });
                return pairs;
            }
            case "attr" -> {
                return Access.getattr(v, s(args.getFirst()));
            }
            case "map" -> {
                List<Object> out = new ArrayList<>();
                if (kw.containsKey("attribute")) {
                    String a = s(kw.get("attribute"));
                    for (Object o : Values.iterate(v)) {
                        Object x = attribute(o, a);
                        out.add(x instanceof Undefined && kw.containsKey("default") ? kw.get("default") : x);
                    }
                    return out;
                }
                if (args.isEmpty()) throw new TemplateException("map needs a filter name or attribute=");
                String f = s(args.getFirst());
                List<Object> rest = args.subList(1, args.size());
                for (Object o : Values.iterate(v)) out.add(filter(f, o, rest, Map.of(), in, scope));
                return out;
            }
            case "select", "reject" -> {
                boolean keep = name.equals("select");
                List<Object> out = new ArrayList<>();
                for (Object o : Values.iterate(v)) {
                    boolean r = args.isEmpty() ? Values.truthy(o) : test(s(args.getFirst()), o, args.subList(1, args.size()), scope);
                    if (r == keep) out.add(o);
                }
                return out;
            }
            case "selectattr", "rejectattr" -> {
                boolean keep = name.equals("selectattr");
                String a = s(args.getFirst());
                List<Object> out = new ArrayList<>();
                for (Object o : Values.iterate(v)) {
                    Object x = attribute(o, a);
                    boolean r = args.size() < 2 ? Values.truthy(x) : test(s(args.get(1)), x, args.subList(2, args.size()), scope);
                    if (r == keep) out.add(o);
                }
                return out;
            }
            case "batch" -> {
                int n = (int) Values.toLong(args.getFirst());
                List<Object> out = new ArrayList<>();
                List<Object> cur = new ArrayList<>();
                for (Object o : Values.iterate(v)) {
                    cur.add(o);
                    if (cur.size() == n) {
                        out.add(cur);
                        cur = new ArrayList<>();
                    }
                }
                if (!cur.isEmpty()) out.add(cur);
                return out;
            }
            case "format" -> {
                return Operators.binary("%", s(v), args.size() == 1 ? args.getFirst() : new ArrayList<>(args));
            }
            case "truncate" -> {
                String str = s(v);
                int len = (int) Values.toLong(arg(args, kw, 0, "length", 255L));
                if (str.length() <= len) return str;
                String end = s(arg(args, kw, 2, "end", "..."));
                return str.substring(0, Math.max(0, len - end.length())) + end;
            }
            case "center" -> {
                String str = s(v);
                int w = (int) Values.toLong(arg(args, kw, 0, "width", 80L));
                if (str.length() >= w) return str;
                int left = (w - str.length()) / 2;
                return " ".repeat(left) + str + " ".repeat(w - str.length() - left);
            }
            case "bool" -> {
                return Values.truthy(v);
            }
            default -> throw new TemplateException("no filter named '" + name + "'");
        }
    }

    /** {@code attribute} of a filter: a dotted path of keys / indexes. */
    static Object attribute(Object item, String path) {
        Object v = item;
        for (String part : path.split("\\.")) {
            if (v instanceof Undefined) return v;
            if (part.chars().allMatch(Character::isDigit) && v instanceof List) v = Access.getitem(v, Long.parseLong(part));
            else v = Access.getitem(v, part);
        }
        return v;
    }

    static boolean test(String name, Object v, List<Object> args, Scope scope) {
        Object a = args.isEmpty() ? null : args.getFirst();
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "number" -> v instanceof Long || v instanceof Double || v instanceof Boolean;
            case "string" -> v instanceof String;
            case "mapping" -> v instanceof Map;
            case "iterable" -> v instanceof List || v instanceof Map || v instanceof String || v instanceof Undefined;
            case "sequence" -> v instanceof List || v instanceof Map || v instanceof String;
            case "callable" -> v instanceof Callable;
            case "sameas" -> v == a || (v != null && a != null && v.getClass() == a.getClass() && (v instanceof Boolean || v instanceof Long) && v.equals(a));
            case "eq", "equalto", "==" -> Values.equal(v, a);
            case "ne", "!=" -> !Values.equal(v, a);
            case "lt", "lessthan", "<" -> Values.compare(v, a) < 0;
            case "le", "<=" -> Values.compare(v, a) <= 0;
            case "gt", "greaterthan", ">" -> Values.compare(v, a) > 0;
            case "ge", ">=" -> Values.compare(v, a) >= 0;
            case "in" -> Values.contains(a, v);
            case "odd" -> Values.toLong(v) % 2 != 0;
            case "even" -> Values.toLong(v) % 2 == 0;
            case "divisibleby" -> Values.toLong(v) % Values.toLong(a) == 0;
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase());
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase());
            case "escaped" -> false;
            case "filter", "test" -> true;
            default -> throw new TemplateException("no test named '" + name + "'");
        };
    }

}
