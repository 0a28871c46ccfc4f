package io.moe4j.server.jinja;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Python's value semantics for template values. Values are {@code null} (None), {@link Undefined}, Boolean, Long,
 * Double, String, List, Map (string keys, insertion order), {@link Namespace}, {@link Callable} and {@link Loop}.
 */
final class Values {
    private Values() {
    }

    /** A missing variable or attribute: empty when printed, false, iterates as nothing; most operations fail. */
    record Undefined(String name) {
        @Override
        public String toString() {
            return "";
        }
    }

    /** {@code namespace(...)}: the one mutable object templates may assign attributes to. */
    static final class Namespace {
        final Map<String, Object> attrs = new LinkedHashMap<>();
    }

    /** Anything a template can call: macros, globals, bound methods. */
    @FunctionalInterface
    interface Callable {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    /** The {@code loop} variable of a for loop. */
    static final class Loop {
        int index0;
        int length;
        List<Object> items;
        int depth0;
        Callable recurse;
        Object lastChanged = new Object();
    }

    /** Converts JSON-like Java values (Jackson's, Integer, Float ...) into template values, deeply. */
    static Object of(Object v) {
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof Long || v instanceof Double) return v;
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof BigInteger b) return b.bitLength() < 64 ? (Object) b.longValue() : (Object) b.doubleValue();
        if (v instanceof Float || v instanceof BigDecimal) return ((Number) v).doubleValue();
        if (v instanceof Character c) return c.toString();
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) out.put(String.valueOf(e.getKey()), of(e.getValue()));
            return out;
        }
        if (v instanceof Collection<?> c) {
            List<Object> out = new ArrayList<>(c.size());
            for (Object o : c) out.add(of(o));
            return out;
        }
        if (v instanceof Object[] a) return of(List.of(a));
        if (v instanceof Callable || v instanceof Namespace || v instanceof Undefined || v instanceof Loop) return v;
        return v.toString();
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) return false;
        if (v instanceof Boolean b) return b;
        if (v instanceof Long l) return l != 0;
        if (v instanceof Double d) return d != 0;
        if (v instanceof String s) return !s.isEmpty();
        if (v instanceof List<?> l) return !l.isEmpty();
        if (v instanceof Map<?, ?> m) return !m.isEmpty();
        return true;
    }

    static String typeName(Object v) {
        if (v == null) return "NoneType";
        if (v instanceof Undefined) return "Undefined";
        if (v instanceof Boolean) return "bool";
        if (v instanceof Long) return "int";
        if (v instanceof Double) return "float";
        if (v instanceof String) return "str";
        if (v instanceof List) return "list";
        if (v instanceof Map) return "dict";
        if (v instanceof Namespace) return "Namespace";
        if (v instanceof Loop) return "LoopContext";
        return "function";
    }

    /** The text a value prints as ({@code {{ v }}}, Python's str): undefined prints nothing. */
    static String str(Object v) {
        if (v instanceof Undefined) return "";
        if (v == null) return "None";
        if (v instanceof String s) return s;
        if (v instanceof Boolean b) return b ? "True" : "False";
        if (v instanceof Long l) return l.toString();
        if (v instanceof Double d) return floatRepr(d);
        if (v instanceof List || v instanceof Map || v instanceof Namespace) return Json.dump(v, null, ", ", ": ", false, false);
        return "<" + typeName(v) + ">";
    }

    /** Python's repr of a float: shortest round-trip digits, always with a '.' or an exponent. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == Math.rint(d) && Math.abs(d) < 1e16) {
            String s = Long.toString((long) d);
            return (d == 0 && 1 / d < 0 ? "-" : "") + s + ".0";
        }
        BigDecimal bd = new BigDecimal(Double.toString(d));
        int exp = bd.precision() - bd.scale() - 1; // decimal exponent of the leading digit
        if (exp < -4 || exp >= 16) {
            String digits = bd.unscaledValue().abs().toString().replaceAll("0+$", "");
            String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return (d < 0 ? "-" : "") + mant + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        return bd.toPlainString();
    }

    static boolean equal(Object a, Object b) {
        if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
        if (a == null || b == null) return a == b;
        if (isNumber(a) && isNumber(b)) return toDouble(a) == toDouble(b);
        if (a instanceof String && b instanceof String) return a.equals(b);
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            if (la.size() != lb.size()) return false;
            for (int i = 0; i < la.size(); i++) if (!equal(la.get(i), lb.get(i))) return false;
            return true;
        }
        if (a instanceof Map<?, ?> ma && b instanceof Map<?, ?> mb) {
            if (ma.size() != mb.size()) return false;
            for (Map.Entry<?, ?> e : ma.entrySet()) {
                if (!mb.containsKey(e.getKey()) || !equal(e.getValue(), mb.get(e.getKey()))) return false;
            }
            return true;
        }
        return a == b || a.equals(b);
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        if (v instanceof Boolean b) return b ? 1 : 0;
        return ((Number) v).doubleValue();
    }

    static long toLong(Object v) {
        if (v instanceof Boolean b) return b ? 1 : 0;
        if (v instanceof Long l) return l;
        return (long) ((Number) v).doubleValue();
    }

    /** Python ordering for numbers and strings (and lists, element-wise). */
    static int compare(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) return Double.compare(toDouble(a), toDouble(b));
        if (a instanceof String sa && b instanceof String sb) return Integer.signum(sa.compareTo(sb));
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            for (int i = 0; i < Math.min(la.size(), lb.size()); i++) {
                int c = compare(la.get(i), lb.get(i));
                if (c != 0) return c;
            }
            return Integer.compare(la.size(), lb.size());
        }
        throw new TemplateException("'<' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
    }

    static Comparator<Object> ordering(boolean caseSensitive) {
        return (x, y) -> {
            if (!caseSensitive && x instanceof String sx && y instanceof String sy) return compare(sx.toLowerCase(), sy.toLowerCase());
            return compare(x, y);
        };
    }

    /** The items a for loop or a filter iterates: a list's items, a dict's keys, a string's characters. */
    static List<Object> iterate(Object v) {
        if (v == null) throw new TemplateException("'NoneType' object is not iterable");
        if (v instanceof Undefined) return List.of();
        if (v instanceof List<?> l) return new ArrayList<>(l);
        if (v instanceof Map<?, ?> m) return new ArrayList<>(m.keySet());
        if (v instanceof String s) {
            List<Object> out = new ArrayList<>();
            s.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
            return out;
        }
        throw new TemplateException("'" + typeName(v) + "' object is not iterable");
    }

    static int length(Object v) {
        if (v instanceof String s) return s.codePointCount(0, s.length());
        if (v instanceof List<?> l) return l.size();
        if (v instanceof Map<?, ?> m) return m.size();
        if (v instanceof Undefined) return 0;
        throw new TemplateException("object of type '" + typeName(v) + "' has no len()");
    }

    static boolean contains(Object container, Object item) {
        if (container instanceof String s) {
            if (!(item instanceof String i)) throw new TemplateException("'in <string>' requires string as left operand, not " + typeName(item));
            return s.contains(i);
        }
        if (container instanceof Map<?, ?> m) return item instanceof String && m.containsKey(item);
        if (container instanceof Namespace ns) return item instanceof String && ns.attrs.containsKey(item);
        if (container instanceof Undefined) return false;
        for (Object o : iterate(container)) if (equal(o, item)) return true;
        return false;
    }
}
