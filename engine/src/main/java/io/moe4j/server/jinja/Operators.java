package io.moe4j.server.jinja;

import io.moe4j.server.jinja.Values.Undefined;

import java.util.ArrayList;
import java.util.List;

/** Python's arithmetic, concatenation and comparison operators on template values. */
final class Operators {
    private Operators() {
    }

    static Object binary(String op, Object a, Object b) {
        if (op.equals("~")) return Values.str(a) + Values.str(b);
        if (a instanceof Undefined || b instanceof Undefined) {
            Undefined u = (Undefined) (a instanceof Undefined ? a : b);
            throw new TemplateException("'" + (u.name().isEmpty() ? "value" : u.name()) + "' is undefined (operator " + op + ")");
        }
        switch (op) {
            case "+" -> {
                if (a instanceof String sa && b instanceof String sb) return sa + sb;
                if (a instanceof List<?> la && b instanceof List<?> lb) {
                    List<Object> out = new ArrayList<>(la);
                    out.addAll(lb);
                    return out;
                }
                if (Values.isNumber(a) && Values.isNumber(b)) return arith(op, a, b);
                if (a instanceof String || b instanceof String) {
                    // Python raises here; Hugging Face's JavaScript renderer concatenates. Be lenient.
                    if (a == null || b == null) throw typeError(op, a, b);
                    return Values.str(a) + Values.str(b);
                }
                throw typeError(op, a, b);
            }
            case "*" -> {
                if (a instanceof String s && (b instanceof Long || b instanceof Boolean)) return repeat(s, Values.toLong(b));
                if (b instanceof String s && (a instanceof Long || a instanceof Boolean)) return repeat(s, Values.toLong(a));
                if (a instanceof List<?> l && b instanceof Long n) {
                    List<Object> out = new ArrayList<>();
                    for (long i = 0; i < n; i++) out.addAll(l);
                    return out;
                }
                if (Values.isNumber(a) && Values.isNumber(b)) return arith(op, a, b);
                throw typeError(op, a, b);
            }
            case "%" -> {
                if (a instanceof String s) return printf(s, b);
                if (Values.isNumber(a) && Values.isNumber(b)) return arith(op, a, b);
                throw typeError(op, a, b);
            }
            default -> {
                if (Values.isNumber(a) && Values.isNumber(b)) return arith(op, a, b);
                throw typeError(op, a, b);
            }
        }
    }

    private static String repeat(String s, long n) {
        if (n <= 0) return "";
        if (n * s.length() > 16 << 20) throw new TemplateException("string too large");
        return s.repeat((int) n);
    }

    private static TemplateException typeError(String op, Object a, Object b) {
        return new TemplateException("unsupported operand type(s) for " + op + ": '" + Values.typeName(a) + "' and '" + Values.typeName(b) + "'");
    }

    private static Object arith(String op, Object a, Object b) {
        boolean ints = !(a instanceof Double) && !(b instanceof Double);
        if (ints) {
            long x = Values.toLong(a), y = Values.toLong(b);
            switch (op) {
                case "+":
                    return Math.addExact(x, y);
                case "-":
                    return Math.subtractExact(x, y);
                case "*":
                    return Math.multiplyExact(x, y);
                case "//":
                    if (y == 0) throw new TemplateException("integer division or modulo by zero");
                    return Math.floorDiv(x, y);
                case "%":
                    if (y == 0) throw new TemplateException("integer division or modulo by zero");
                    return Math.floorMod(x, y);
                case "**":
                    if (y >= 0) {
                        long r = 1;
                        for (long i = 0; i < y; i++) r = Math.multiplyExact(r, x);
                        return r;
                    }
                    return Math.pow(x, y);
                case "/":
                    if (y == 0) throw new TemplateException("division by zero");
                    return (double) x / y;
                default:
                    throw new TemplateException("unknown operator " + op);
            }
        }
        double x = Values.toDouble(a), y = Values.toDouble(b);
        return switch (op) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> {
                if (y == 0) throw new TemplateException("float division by zero");
                yield x / y;
            }
            case "//" -> {
                if (y == 0) throw new TemplateException("float floor division by zero");
                yield Math.floor(x / y);
            }
            case "%" -> {
                if (y == 0) throw new TemplateException("float modulo");
                double r = x % y;
                yield r != 0 && (r < 0) != (y < 0) ? r + y : r;
            }
            case "**" -> Math.pow(x, y);
            default -> throw new TemplateException("unknown operator " + op);
        };
    }

    /** {@code "%s and %d" % (a, b)} with the common conversions. */
    private static String printf(String fmt, Object arg) {
        List<Object> args = arg instanceof List<?> l ? new ArrayList<>(l) : List.of(arg == null ? "None" : arg);
        StringBuilder sb = new StringBuilder();
        int k = 0;
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%') {
                sb.append(c);
                continue;
            }
            if (++i >= fmt.length()) throw new TemplateException("incomplete format");
            char conv = fmt.charAt(i);
            if (conv == '%') {
                sb.append('%');
                continue;
            }
            if (k >= args.size()) throw new TemplateException("not enough arguments for format string");
            Object v = args.get(k++);
            switch (conv) {
                case 's' -> sb.append(Values.str(v));
                case 'd', 'i' -> sb.append(Values.toLong(v));
                case 'f' -> sb.append(String.format(java.util.Locale.ROOT, "%f", Values.toDouble(v)));
                case 'r' -> sb.append(v instanceof String s ? "'" + s + "'" : Values.str(v));
                default -> throw new TemplateException("unsupported format character '" + conv + "'");
            }
        }
        return sb.toString();
    }

    static boolean compare(String op, Object a, Object b) {
        return switch (op) {
            case "==" -> Values.equal(a, b);
            case "!=" -> !Values.equal(a, b);
            case "in" -> Values.contains(b, a);
            case "notin" -> !Values.contains(b, a);
            default -> {
                if (a instanceof Undefined || b instanceof Undefined) throw new TemplateException("cannot compare an undefined value");
                int c = Values.compare(a, b);
                yield switch (op) {
                    case "<" -> c < 0;
                    case ">" -> c > 0;
                    case "<=" -> c <= 0;
                    default -> c >= 0;
                };
            }
        };
    }
}
