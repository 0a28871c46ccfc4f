package io.moe4j.server.jinja;

import io.moe4j.server.jinja.Values.Callable;
import io.moe4j.server.jinja.Values.Loop;
import io.moe4j.server.jinja.Values.Namespace;
import io.moe4j.server.jinja.Values.Undefined;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Attribute and item access, slicing, and the Python methods of str, dict and list that templates call. */
final class Access {
    private Access() {
    }

    /** {@code obj.name}: Jinja2 tries the attribute (a method) first, then the item. */
    static Object getattr(Object obj, String name) {
        if (obj instanceof Undefined u) {
            throw new TemplateException("'" + (u.name().isEmpty() ? "value" : u.name()) + "' is undefined (reading attribute '" + name + "')");
        }
        if (obj instanceof Map<?, ?> m) {
            Object method = dictMethod(m, name);
            if (method != null) return method;
            return m.containsKey(name) ? m.get(name) : new Undefined(name);
        }
        if (obj instanceof Namespace ns) return ns.attrs.containsKey(name) ? ns.attrs.get(name) : new Undefined(name);
        if (obj instanceof Loop loop) return loopAttr(loop, name);
        if (obj instanceof String s) {
            Object method = stringMethod(s, name);
            return method != null ? method : new Undefined(name);
        }
        if (obj instanceof List<?> l) {
            Object method = listMethod(l, name);
            return method != null ? method : new Undefined(name);
        }
        return new Undefined(name);
    }

    /** {@code obj[key]}: the item first, then the attribute. */
    static Object getitem(Object obj, Object key) {
        if (obj instanceof Undefined u) {
            throw new TemplateException("'" + (u.name().isEmpty() ? "value" : u.name()) + "' is undefined (reading item " + Values.str(key) + ")");
        }
        if (obj instanceof Map<?, ?> m) {
            if (key instanceof String s && m.containsKey(s)) return m.get(s);
            return key instanceof String s ? getattr(obj, s) : new Undefined(Values.str(key));
        }
        if (obj instanceof List<?> l) {
            if (key instanceof Long || key instanceof Boolean) {
                long i = Values.toLong(key);
                if (i < 0) i += l.size();
                return i >= 0 && i < l.size() ? l.get((int) i) : new Undefined("[" + key + "]");
            }
            if (key instanceof String s) return getattr(obj, s);
            throw new TemplateException("list indices must be integers or slices, not " + Values.typeName(key));
        }
        if (obj instanceof String str) {
            if (key instanceof Long || key instanceof Boolean) {
                int[] cps = str.codePoints().toArray();
                long i = Values.toLong(key);
                if (i < 0) i += cps.length;
                return i >= 0 && i < cps.length ? new String(Character.toChars(cps[(int) i])) : new Undefined("[" + key + "]");
            }
            if (key instanceof String s) return getattr(obj, s);
            throw new TemplateException("string indices must be integers, not " + Values.typeName(key));
        }
        if (key instanceof String s) return getattr(obj, s);
        return new Undefined(Values.str(key));
    }

    /** Python slicing {@code obj[start:stop:step]} of a list or a string. */
    static Object slice(Object obj, Object start, Object stop, Object step) {
        List<Object> items;
        boolean string = obj instanceof String;
        if (obj instanceof List<?> l) items = new ArrayList<>(l);
        else if (string) items = Values.iterate(obj);
        else if (obj instanceof Undefined u) throw new TemplateException("'" + u.name() + "' is undefined (slicing)");
        else throw new TemplateException("'" + Values.typeName(obj) + "' object is not subscriptable");
        int n = items.size();
        long st = step == null ? 1 : Values.toLong(step);
        if (st == 0) throw new TemplateException("slice step cannot be zero");
        long lo, hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(Values.toLong(start), n, 0, n);
            hi = stop == null ? n : clamp(Values.toLong(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(Values.toLong(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(Values.toLong(stop), n, -1, n - 1);
        }
        List<Object> out = new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) out.add(items.get((int) i));
        if (!string) return out;
        StringBuilder sb = new StringBuilder();
        for (Object o : out) sb.append((String) o);
        return sb.toString();
    }

    private static long clamp(long i, int n, long min, long max) {
        if (i < 0) i += n;
        return Math.max(min, Math.min(max, i));
    }

    private static Object loopAttr(Loop loop, String name) {
        int i = loop.index0, n = loop.length;
        return switch (name) {
            case "index" -> (long) i + 1;
            case "index0" -> (long) i;
            case "revindex" -> (long) (n - i);
            case "revindex0" -> (long) (n - i - 1);
            case "first" -> i == 0;
            case "last" -> i == n - 1;
            case "length" -> (long) n;
            case "depth" -> (long) loop.depth0 + 1;
            case "depth0" -> (long) loop.depth0;
            case "previtem" -> i > 0 ? loop.items.get(i - 1) : new Undefined("previtem");
            case "nextitem" -> i < n - 1 ? loop.items.get(i + 1) : new Undefined("nextitem");
            case "cycle" -> (Callable) (args, kw) -> {
                if (args.isEmpty()) throw new TemplateException("no items for cycling given");
                return args.get(i % args.size());
            };
            case "changed" -> (Callable) (args, kw) -> {
                boolean changed = !Values.equal(args, loop.lastChanged);
                loop.lastChanged = args;
                return changed;
            };
            default -> new Undefined(name);
        };
    }

    private static Object dictMethod(Map<?, ?> m, String name) {
        return switch (name) {
            case "items" -> (Callable) (args, kw) -> {
                List<Object> out = new ArrayList<>();
                m.forEach((k, v) -> out.add(List.of(k, v == null ? NULL_MARK : v)));
                return unmark(out);
            };
            case "keys" -> (Callable) (args, kw) -> new ArrayList<Object>(m.keySet());
            case "values" -> (Callable) (args, kw) -> new ArrayList<Object>(m.values());
            case "get" -> (Callable) (args, kw) -> {
                if (args.isEmpty()) throw new TemplateException("get expected at least 1 argument");
                Object k = args.getFirst();
                if (m.containsKey(k)) return m.get(k);
                return args.size() > 1 ? args.get(1) : kw.getOrDefault("default", null);
            };
            default -> null;
        };
    }

    private static final Object NULL_MARK = new Object();

    /** List.of refuses nulls: pairs are built with a marker and rebuilt as mutable lists. */
    private static List<Object> unmark(List<Object> pairs) {
        List<Object> out = new ArrayList<>(pairs.size());
        for (Object p : pairs) {
            List<?> pair = (List<?>) p;
            List<Object> copy = new ArrayList<>(2);
            for (Object x : pair) copy.add(x == NULL_MARK ? null : x);
            out.add(copy);
        }
        return out;
    }

    private static Object listMethod(List<?> l, String name) {
        return switch (name) {
            case "index" -> (Callable) (args, kw) -> {
                for (int i = 0; i < l.size(); i++) if (Values.equal(l.get(i), args.getFirst())) return (long) i;
                throw new TemplateException(Values.str(args.getFirst()) + " is not in list");
            };
            case "count" -> (Callable) (args, kw) -> {
                long c = 0;
                for (Object o : l) if (Values.equal(o, args.getFirst())) c++;
                return c;
            };
            default -> null;
        };
    }

    static boolean pyspace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85 || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x1f;
    }

    static String strip(String s, Object chars, boolean left, boolean right) {
        int start = 0, end = s.length();
        String set = chars == null || chars instanceof Undefined ? null : Values.str(chars);
        if (left) while (start < end && (set == null ? pyspace(s.charAt(start)) : set.indexOf(s.charAt(start)) >= 0)) start++;
        if (right) while (end > start && (set == null ? pyspace(s.charAt(end - 1)) : set.indexOf(s.charAt(end - 1)) >= 0)) end--;
        return s.substring(start, end);
    }

    static List<Object> split(String s, Object sepArg, long maxsplit) {
        List<Object> out = new ArrayList<>();
        if (sepArg == null || sepArg instanceof Undefined) {
            int i = 0, n = s.length();
            while (true) {
                while (i < n && pyspace(s.charAt(i))) i++;
                if (i >= n) break;
                if (maxsplit >= 0 && out.size() >= maxsplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !pyspace(s.charAt(j))) j++;
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        String sep = Values.str(sepArg);
        if (sep.isEmpty()) throw new TemplateException("empty separator");
        int from = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int k = s.indexOf(sep, from);
            if (k < 0) break;
            out.add(s.substring(from, k));
            from = k + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    static List<Object> rsplit(String s, Object sepArg, long maxsplit) {
        if (maxsplit < 0) return split(s, sepArg, -1);
        List<Object> out = new ArrayList<>();
        if (sepArg == null || sepArg instanceof Undefined) {
            int end = s.length();
            while (true) {
                while (end > 0 && pyspace(s.charAt(end - 1))) end--;
                if (end == 0) break;
                if (out.size() >= maxsplit) {
                    out.addFirst(strip(s.substring(0, end), null, true, false));
                    break;
                }
                int j = end;
                while (j > 0 && !pyspace(s.charAt(j - 1))) j--;
                out.addFirst(s.substring(j, end));
                end = j;
            }
            return out;
        }
        String sep = Values.str(sepArg);
        if (sep.isEmpty()) throw new TemplateException("empty separator");
        int end = s.length();
        while (out.size() < maxsplit) {
            int k = s.lastIndexOf(sep, end - sep.length());
            if (k < 0 || end - sep.length() < 0) break;
            out.addFirst(s.substring(k + sep.length(), end));
            end = k;
        }
        out.addFirst(s.substring(0, end));
        return out;
    }

    static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isLetter(c)) {
                sb.append(prevCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
                prevCased = true;
            } else {
                sb.append(c);
                prevCased = false;
            }
        }
        return sb.toString();
    }

    static String capitalize(String s) {
        if (s.isEmpty()) return s;
        int first = s.codePointAt(0);
        return new String(Character.toChars(Character.toTitleCase(first))) + s.substring(Character.charCount(first)).toLowerCase();
    }

    private static boolean affix(String s, Object arg, boolean prefix) {
        if (arg instanceof List<?> l) {
            for (Object o : l) if (affix(s, o, prefix)) return true;
            return false;
        }
        if (!(arg instanceof String a)) {
            throw new TemplateException((prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + Values.typeName(arg));
        }
        return prefix ? s.startsWith(a) : s.endsWith(a);
    }

    private static Object arg(List<Object> args, Map<String, Object> kw, int i, String name) {
        if (i < args.size()) return args.get(i);
        return kw.get(name);
    }

    private static Object stringMethod(String s, String name) {
        return switch (name) {
            case "strip" -> (Callable) (a, kw) -> strip(s, arg(a, kw, 0, "chars"), true, true);
            case "lstrip" -> (Callable) (a, kw) -> strip(s, arg(a, kw, 0, "chars"), true, false);
            case "rstrip" -> (Callable) (a, kw) -> strip(s, arg(a, kw, 0, "chars"), false, true);
            case "split" -> (Callable) (a, kw) -> {
                Object max = arg(a, kw, 1, "maxsplit");
                return split(s, arg(a, kw, 0, "sep"), max == null ? -1 : Values.toLong(max));
            };
            case "rsplit" -> (Callable) (a, kw) -> {
                Object max = arg(a, kw, 1, "maxsplit");
                return rsplit(s, arg(a, kw, 0, "sep"), max == null ? -1 : Values.toLong(max));
            };
            case "splitlines" -> (Callable) (a, kw) -> {
                List<Object> out = new ArrayList<>();
                for (String line : s.split("\r\n|\r|\n", -1)) out.add(line);
                if (!out.isEmpty() && "".equals(out.getLast())) out.removeLast();
                return out;
            };
            case "startswith" -> (Callable) (a, kw) -> affix(s, a.getFirst(), true);
            case "endswith" -> (Callable) (a, kw) -> affix(s, a.getFirst(), false);
            case "upper" -> (Callable) (a, kw) -> s.toUpperCase();
            case "lower" -> (Callable) (a, kw) -> s.toLowerCase();
            case "title" -> (Callable) (a, kw) -> title(s);
            case "capitalize" -> (Callable) (a, kw) -> capitalize(s);
            case "swapcase" -> (Callable) (a, kw) -> {
                StringBuilder sb = new StringBuilder();
                s.chars().forEach(c -> sb.append(Character.isUpperCase(c) ? Character.toLowerCase((char) c) : Character.toUpperCase((char) c)));
                return sb.toString();
            };
            case "replace" -> (Callable) (a, kw) -> {
                Object count = arg(a, kw, 2, "count");
                return replace(s, Values.str(a.get(0)), Values.str(a.get(1)), count == null ? -1 : Values.toLong(count));
            };
            case "find" -> (Callable) (a, kw) -> (long) s.indexOf(Values.str(a.getFirst()));
            case "rfind" -> (Callable) (a, kw) -> (long) s.lastIndexOf(Values.str(a.getFirst()));
            case "index" -> (Callable) (a, kw) -> {
                int k = s.indexOf(Values.str(a.getFirst()));
                if (k < 0) throw new TemplateException("substring not found");
                return (long) k;
            };
            case "count" -> (Callable) (a, kw) -> {
                String sub = Values.str(a.getFirst());
                if (sub.isEmpty()) return (long) s.length() + 1;
                long c = 0;
                for (int k = s.indexOf(sub); k >= 0; k = s.indexOf(sub, k + sub.length())) c++;
                return c;
            };
            case "join" -> (Callable) (a, kw) -> {
                StringBuilder sb = new StringBuilder();
                List<Object> items = Values.iterate(a.getFirst());
                for (int k = 0; k < items.size(); k++) {
                    if (k > 0) sb.append(s);
                    sb.append(Values.str(items.get(k)));
                }
                return sb.toString();
            };
            case "isdigit" -> (Callable) (a, kw) -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isnumeric" -> (Callable) (a, kw) -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isalpha" -> (Callable) (a, kw) -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            case "isalnum" -> (Callable) (a, kw) -> !s.isEmpty() && s.chars().allMatch(Character::isLetterOrDigit);
            case "isspace" -> (Callable) (a, kw) -> !s.isEmpty() && s.chars().allMatch(Access::pyspace);
            case "islower" -> (Callable) (a, kw) -> s.chars().anyMatch(Character::isLetter) && s.equals(s.toLowerCase());
            case "isupper" -> (Callable) (a, kw) -> s.chars().anyMatch(Character::isLetter) && s.equals(s.toUpperCase());
            case "zfill" -> (Callable) (a, kw) -> {
                int w = (int) Values.toLong(a.getFirst());
                if (s.length() >= w) return s;
                boolean sign = !s.isEmpty() && (s.charAt(0) == '-' || s.charAt(0) == '+');
                return (sign ? s.substring(0, 1) : "") + "0".repeat(w - s.length()) + (sign ? s.substring(1) : s);
            };
            case "format" -> (Callable) (a, kw) -> format(s, a, kw);
            default -> null;
        };
    }

    static String replace(String s, String old, String rep, long count) {
        if (count == 0) return s;
        StringBuilder sb = new StringBuilder();
        if (old.isEmpty()) {
            long done = 0;
            int i = 0;
            for (; i < s.length(); i++) {
                if (count < 0 || done < count) {
                    sb.append(rep);
                    done++;
                }
                sb.append(s.charAt(i));
            }
            if (count < 0 || done < count) sb.append(rep);
            return sb.toString();
        }
        int from = 0;
        long done = 0;
        while (count < 0 || done < count) {
            int k = s.indexOf(old, from);
            if (k < 0) break;
            sb.append(s, from, k).append(rep);
            from = k + old.length();
            done++;
        }
        sb.append(s.substring(from));
        return sb.toString();
    }

    /** {@code str.format} with {}, {0}, {name} fields (no format specs). */
    private static String format(String s, List<Object> args, Map<String, Object> kw) {
        StringBuilder sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '{' && i + 1 < s.length() && s.charAt(i + 1) == '{') {
                sb.append('{');
                i++;
            } else if (c == '}' && i + 1 < s.length() && s.charAt(i + 1) == '}') {
                sb.append('}');
                i++;
            } else if (c == '{') {
                int end = s.indexOf('}', i);
                if (end < 0) throw new TemplateException("Single '{' encountered in format string");
                String field = s.substring(i + 1, end);
                int colon = field.indexOf(':');
                if (colon >= 0) field = field.substring(0, colon);
                Object v;
                if (field.isEmpty()) v = args.get(auto++);
                else if (field.chars().allMatch(Character::isDigit)) v = args.get(Integer.parseInt(field));
                else v = kw.containsKey(field) ? kw.get(field) : new Undefined(field);
                sb.append(Values.str(v));
                i = end;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
