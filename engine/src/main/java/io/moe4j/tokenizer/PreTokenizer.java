package io.moe4j.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the words that byte-level BPE merges within, exactly as llama.cpp's {@code unicode_regex_split}:
 * a list of regexes is applied one after the other, each one splitting every piece left by the previous one into its
 * matches and the gaps between them (gaps are kept as pieces too).
 *
 * <p>How each regex is run mirrors llama.cpp, because its results are the reference:
 * <ul>
 *   <li>the GPT-2 and LLaMA-3 regexes run as hand-written scanners ({@link #splitGpt2}, {@link #splitLlama3}),
 *       ports of llama.cpp's {@code unicode_regex_split_custom_*};</li>
 *   <li>other regexes that use {@code \p{..}} run on a "collapsed" text in which every non-ASCII code point is
 *       replaced by one placeholder character for its category (letter, number, punctuation, mark, symbol, other;
 *       non-ASCII whitespace becomes U+000B), with each {@code \p{X}} rewritten to a class of that placeholder plus
 *       the ASCII members of X. This is what llama.cpp does with std::regex, and it has consequences: e.g.
 *       {@code \p{Lu}} means any letter, and a combining mark is not a letter;</li>
 *   <li>regexes without {@code \p{..}} run on the real code points (non-ASCII whitespace again U+000B).</li>
 * </ul>
 * Patterns are compiled once per pre-tokenizer type and shared; a split allocates only its own buffers.
 */
final class PreTokenizer {
    static final String GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static final String LLAMA3_RE_ORIGINAL =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3_RE =
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_RE =
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String GPT4O_RE =
            "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** The regex lists of llama.cpp's {@code llm_tokenizer_bpe}, by pre-tokenizer type. */
    enum Type {
        DEFAULT("[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]"),
        GPT2(GPT2_RE),
        LLAMA3(LLAMA3_RE),
        QWEN2(QWEN2_RE),
        QWEN35("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
        GPT4O(GPT4O_RE),
        TEKKEN("[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
        STARCODER("\\p{N}", GPT2_RE),
        FALCON("[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]"),
        DEEPSEEK_CODER("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"),
        // (code points that Unicode normalization folds into others, e.g. U+1F7D, are written as unicode escapes)
        DEEPSEEK_LLM("[\r\n]",
                "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                "\\s+$",
                "[一-龥ࠀ-一가-퟿]+",
                "\\p{N}+"),
        DEEPSEEK3("\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
        PORO(" ?[^(\\s|.,!?…。，、।۔،)]+"),
        VIKING(" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"),
        BAILINGMOE("'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"),
        SEED_CODER("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

        final List<String> regexes;

        Type(String... regexes) {
            this.regexes = List.of(regexes);
        }
    }

    /**
     * A {@code tokenizer.ggml.pre} name as llama.cpp knows it: which regex list, and the flags that llama.cpp sets
     * together with it (merges ignored for words that are whole tokens, clean-up of spaces on decoding, BOS).
     */
    record Config(String name, Type type, boolean ignoreMerges, boolean cleanSpaces, boolean addBos, boolean noBos) {
    }

    private static Config c(String name, Type type) {
        return new Config(name, type, false, true, false, false);
    }

    private static Config noClean(String name, Type type) {
        return new Config(name, type, false, false, false, false);
    }

    private static final Map<String, Config> CONFIGS = buildConfigs();

    private static Map<String, Config> buildConfigs() {
        List<Config> list = new ArrayList<>();
        list.add(c("default", Type.DEFAULT));
        for (String n : List.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")) {
            list.add(new Config(n, Type.LLAMA3, true, true, true, false));
        }
        list.add(noClean("deepseek-llm", Type.DEEPSEEK_LLM));
        list.add(noClean("deepseek-coder", Type.DEEPSEEK_CODER));
        for (String n : List.of("deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm")) list.add(noClean(n, Type.DEEPSEEK3));
        list.add(c("falcon", Type.FALCON));
        for (String n : List.of("mpt", "olmo", "jais", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                "a.x-4.0", "mellum", "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe")) {
            list.add(c(n, Type.GPT2));
        }
        for (String n : List.of("trillion", "granite-docling")) list.add(noClean(n, Type.GPT2));
        for (String n : List.of("starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2")) list.add(c(n, Type.STARCODER));
        for (String n : List.of("command-r", "smollm")) list.add(noClean(n, Type.STARCODER));
        for (String n : List.of("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2")) {
            list.add(noClean(n, Type.QWEN2));
        }
        for (String n : List.of("megrez", "stablelm2")) list.add(c(n, Type.QWEN2));
        list.add(noClean("qwen35", Type.QWEN35));
        for (String n : List.of("dbrx", "smaug-bpe")) list.add(c(n, Type.LLAMA3));
        for (String n : List.of("glm4", "chatglm-bpe")) list.add(new Config(n, Type.LLAMA3, false, true, false, true));
        list.add(noClean("poro-chat", Type.PORO));
        for (String n : List.of("bloom", "gpt3-finnish")) list.add(c(n, Type.PORO));
        list.add(noClean("viking", Type.VIKING));
        list.add(new Config("tekken", Type.TEKKEN, true, false, true, false));
        // "o200k" is not a name llama.cpp knows; accepted as an alias of gpt-4o (OpenAI's o200k encoding).
        for (String n : List.of("gpt-4o", "o200k", "llama4", "kanana2", "talkie", "minimax-m2")) list.add(noClean(n, Type.GPT4O));
        for (String n : List.of("bailingmoe", "bailingmoe2", "llada-moe")) list.add(noClean(n, Type.BAILINGMOE));
        list.add(noClean("seed-coder", Type.SEED_CODER));
        Map<String, Config> m = new java.util.HashMap<>();
        for (Config cfg : list) {
            if (m.put(cfg.name(), cfg) != null) throw new IllegalStateException("duplicate pre-tokenizer " + cfg.name());
        }
        return Map.copyOf(m);
    }

    /** The configuration for a {@code tokenizer.ggml.pre} name, or null if this implementation does not know it. */
    static Config config(String name) {
        return CONFIGS.get(name);
    }

    // ------------------------------------------------------------------------------------------------------------

    private static final PreTokenizer[] INSTANCES = new PreTokenizer[Type.values().length];

    static synchronized PreTokenizer of(Type type) {
        PreTokenizer p = INSTANCES[type.ordinal()];
        if (p == null) INSTANCES[type.ordinal()] = p = new PreTokenizer(type, type.regexes, true);
        return p;
    }

    /** A splitter for any llama.cpp regex list; {@code allowCustom = false} runs even the GPT-2/LLaMA-3 regexes as regexes. */
    static PreTokenizer ofRegexes(List<String> regexes, boolean allowCustom) {
        return new PreTokenizer(null, regexes, allowCustom);
    }

    private enum Kind { GPT2_CUSTOM, LLAMA3_CUSTOM, COLLAPSED, PLAIN }

    private record Step(Kind kind, Pattern pattern) {
    }

    final Type type;
    private final List<Step> steps;
    private final boolean needsCollapsed;
    private final boolean needsPlain;

    private PreTokenizer(Type type, List<String> regexes, boolean allowCustom) {
        this.type = type;
        List<Step> s = new ArrayList<>();
        boolean collapsed = false;
        boolean plain = false;
        for (String re : regexes) {
            if (allowCustom && re.equals(GPT2_RE)) {
                s.add(new Step(Kind.GPT2_CUSTOM, null));
            } else if (allowCustom && (re.equals(LLAMA3_RE) || re.equals(LLAMA3_RE_ORIGINAL))) {
                s.add(new Step(Kind.LLAMA3_CUSTOM, null));
            } else if (usesCategories(re)) {
                s.add(new Step(Kind.COLLAPSED, Pattern.compile(collapseRegex(re))));
                collapsed = true;
            } else {
                s.add(new Step(Kind.PLAIN, Pattern.compile(endAnchorToZ(re))));
                plain = true;
            }
        }
        this.steps = List.copyOf(s);
        this.needsCollapsed = collapsed;
        this.needsPlain = plain;
    }

    // ---- collapsed regexes ---------------------------------------------------------------------------------------

    private static final char CAT_OTHER = '\u00D0';
    private static final Map<String, Integer> UCAT = Map.of(
            "\\p{N}", Unicode.NUMBER, "\\p{L}", Unicode.LETTER, "\\p{P}", Unicode.PUNCTUATION, "\\p{M}", Unicode.MARK,
            "\\p{S}", Unicode.SYMBOL, "\\p{Lu}", Unicode.LETTER, "\\p{Ll}", Unicode.LETTER, "\\p{Lt}", Unicode.LETTER,
            "\\p{Lm}", Unicode.LETTER, "\\p{Lo}", Unicode.LETTER);

    private static char placeholder(int category) {
        return switch (category) {
            case Unicode.NUMBER -> '\u00D1';
            case Unicode.LETTER -> '\u00D2';
            case Unicode.PUNCTUATION -> '\u00D3';
            case Unicode.MARK -> '\u00D4';
            case Unicode.SYMBOL -> '\u00D5';
            default -> CAT_OTHER;
        };
    }

    /** The ASCII members of each category, as llama.cpp lists them (note: '~' is in none of them). */
    private static String asciiMembers(int category) {
        return switch (category) {
            case Unicode.NUMBER -> "0-9";
            case Unicode.LETTER -> "A-Za-z";
            case Unicode.PUNCTUATION -> "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
            case Unicode.SYMBOL -> "\\$\\+<->^`\\|";
            default -> "";
        };
    }

    private static boolean usesCategories(String re) {
        for (String k : UCAT.keySet()) if (re.contains(k)) return true;
        return false;
    }

    /** llama.cpp's rewriting of a regex for the collapsed text. */
    static String collapseRegex(String re) {
        for (int i = 0; i < re.length(); i++) {
            if (re.charAt(i) >= 128) throw new IllegalArgumentException("regex mixes unicode categories and non-ASCII characters: " + re);
        }
        StringBuilder out = new StringBuilder();
        boolean inside = false;
        for (int i = 0; i < re.length(); i++) {
            char ch = re.charAt(i);
            if (ch == '[' && (i == 0 || re.charAt(i - 1) != '\\')) {
                out.append('[');
                inside = true;
                continue;
            }
            if (inside && ch == ']' && re.charAt(i - 1) != '\\') {
                out.append(']');
                inside = false;
                continue;
            }
            if (ch == '\\' && i + 3 < re.length() && re.charAt(i + 1) == 'p' && re.charAt(i + 2) == '{') {
                int close = re.indexOf('}', i + 3);
                if (close >= 0 && close <= i + 10) {
                    Integer cat = UCAT.get(re.substring(i, close + 1));
                    if (cat != null) {
                        if (!inside) out.append('[');
                        out.append(placeholder(cat)).append(asciiMembers(cat));
                        if (!inside) out.append(']');
                        i = close;
                        continue;
                    }
                }
            }
            out.append(ch);
        }
        // "((?=[X])([^Y]))" consumes one character that is in X and not in Y: the same as the class [X&&[^Y]], which
        // java.util.regex repeats iteratively (a repeated group recurses and overflows the stack on long words).
        return LOOKAHEAD_CLASS.matcher(out).replaceAll(m -> Matcher.quoteReplacement("[" + m.group(1) + "&&[^" + m.group(2) + "]]"));
    }

    private static final Pattern LOOKAHEAD_CLASS = Pattern.compile("\\(\\(\\?=\\[([^\\[\\]]*)\\]\\)\\(\\[\\^([^\\[\\]]*)\\]\\)\\)");

    /** ECMAScript's '$' (no multiline) matches only at the very end; Java's also before a final line terminator. */
    private static String endAnchorToZ(String re) {
        if (re.endsWith("$") && !re.endsWith("\\$")) return re.substring(0, re.length() - 1) + "\\z";
        return re;
    }

    // ---- splitting ----------------------------------------------------------------------------------------------

    /** The words of {@code text} (code point boundaries), in order; their concatenation is the text. */
    List<String> split(String text) {
        int[] cps = text.codePoints().toArray();
        List<String> words = new ArrayList<>();
        if (cps.length == 0) return words;
        int[] lens = {cps.length};
        int nLens = 1;
        String collapsed = needsCollapsed ? collapsedText(cps) : null;
        String plain = null;
        int[] cpToChar = null;
        int[] charToCp = null;
        if (needsPlain) {
            StringBuilder sb = new StringBuilder(cps.length + 8);
            cpToChar = new int[cps.length + 1];
            for (int i = 0; i < cps.length; i++) {
                cpToChar[i] = sb.length();
                int cp = cps[i];
                sb.appendCodePoint(cp > 0x7F && Unicode.isWhitespace(cp) ? 0x0B : cp);
            }
            cpToChar[cps.length] = sb.length();
            plain = sb.toString();
            charToCp = new int[plain.length() + 1];
            for (int i = 0; i <= cps.length; i++) charToCp[cpToChar[i]] = i;
        }
        for (Step step : steps) {
            IntList out = new IntList(nLens * 2 + 4);
            switch (step.kind) {
                case GPT2_CUSTOM -> splitGpt2(cps, lens, nLens, out);
                case LLAMA3_CUSTOM -> splitLlama3(cps, lens, nLens, out);
                case COLLAPSED -> splitRegex(step.pattern.matcher(collapsed), null, null, lens, nLens, out);
                case PLAIN -> splitRegex(step.pattern.matcher(plain), cpToChar, charToCp, lens, nLens, out);
            }
            lens = out.a;
            nLens = out.n;
        }
        int start = 0;
        for (int i = 0; i < nLens; i++) {
            words.add(new String(cps, start, lens[i]));
            start += lens[i];
        }
        return words;
    }

    private static String collapsedText(int[] cps) {
        char[] c = new char[cps.length];
        for (int i = 0; i < cps.length; i++) {
            int cp = cps[i];
            if (cp < 128) {
                c[i] = (char) cp;
                continue;
            }
            int f = Unicode.flags(cp);
            c[i] = (f & Unicode.WHITESPACE) != 0 ? '\u000B' : placeholder(f & Unicode.CATEGORY_MASK);
        }
        return new String(c);
    }

    private static void splitRegex(Matcher m, int[] cpToChar, int[] charToCp, int[] lens, int nLens, IntList out) {
        int start = 0;
        for (int k = 0; k < nLens; k++) {
            int end = start + lens[k];
            int from = cpToChar == null ? start : cpToChar[start];
            int to = cpToChar == null ? end : cpToChar[end];
            m.region(from, to);
            int prev = start;
            while (m.find()) {
                int ms = cpToChar == null ? m.start() : charToCp[m.start()];
                int me = cpToChar == null ? m.end() : charToCp[m.end()];
                if (ms > prev) out.add(ms - prev);
                if (me > ms) out.add(me - ms);
                prev = me;
            }
            if (prev < end) out.add(end - prev);
            start = end;
        }
    }

    /** Port of llama.cpp's scanner for {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}. */
    static void splitGpt2(int[] cps, int[] lens, int nLens, IntList out) {
        int start = 0;
        for (int k = 0; k < nLens; k++) {
            Scan s = new Scan(cps, start, start + lens[k], out);
            start += lens[k];
            int pos = s.ini;
            while (pos < s.end) {
                int cpt = s.cpt(pos);
                int flags = s.flags(pos);
                if (cpt == '\'' && pos + 1 < s.end) {
                    int next = s.cpt(pos + 1);
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        pos += s.add(pos + 2);
                        continue;
                    }
                    if (pos + 2 < s.end) {
                        int nn = s.cpt(pos + 2);
                        if ((next == 'r' && nn == 'e') || (next == 'v' && nn == 'e') || (next == 'l' && nn == 'l')) {
                            pos += s.add(pos + 3);
                            continue;
                        }
                    }
                }
                int flags2 = cpt == ' ' ? s.flags(pos + 1) : flags;
                if ((flags2 & Unicode.LETTER) != 0) {
                    if (cpt == ' ') pos++;
                    while ((flags2 & Unicode.LETTER) != 0) flags2 = s.flags(++pos);
                    s.add(pos);
                    continue;
                }
                if ((flags2 & Unicode.NUMBER) != 0) {
                    if (cpt == ' ') pos++;
                    while ((flags2 & Unicode.NUMBER) != 0) flags2 = s.flags(++pos);
                    s.add(pos);
                    continue;
                }
                if (isOtherInRange(flags2)) {
                    if (cpt == ' ') pos++;
                    while (isOtherInRange(flags2)) flags2 = s.flags(++pos);
                    s.add(pos);
                    continue;
                }
                int nws = 0;
                while ((s.flags(pos + nws) & Unicode.WHITESPACE) != 0) nws++;
                if (nws > 1 && s.cpt(pos + nws) != Scan.OUT_OF_RANGE) {
                    pos += nws - 1;
                    s.add(pos);
                    continue;
                }
                if (nws > 0) {
                    pos += nws;
                    s.add(pos);
                    continue;
                }
                s.add(++pos);
            }
        }
    }

    /** Port of llama.cpp's scanner for the LLaMA-3 regex (see {@link #LLAMA3_RE_ORIGINAL}). */
    static void splitLlama3(int[] cps, int[] lens, int nLens, IntList out) {
        int start = 0;
        for (int k = 0; k < nLens; k++) {
            Scan s = new Scan(cps, start, start + lens[k], out);
            start += lens[k];
            int pos = s.ini;
            while (pos < s.end) {
                int cpt = s.cpt(pos);
                int flags = s.flags(pos);
                if (cpt == '\'' && pos + 1 < s.end) {
                    int next = Character.toLowerCase(s.cpt(pos + 1));
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        pos += s.add(pos + 2);
                        continue;
                    }
                    if (pos + 2 < s.end) {
                        int nn = Character.toLowerCase(s.cpt(pos + 2));
                        if ((next == 'r' && nn == 'e') || (next == 'v' && nn == 'e') || (next == 'l' && nn == 'l')) {
                            pos += s.add(pos + 3);
                            continue;
                        }
                    }
                }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(cpt == '\r' || cpt == '\n' || (flags & Unicode.NUMBER) != 0)) {
                    if ((flags & Unicode.LETTER) != 0 || (s.flags(pos + 1) & Unicode.LETTER) != 0) {
                        pos++;
                        while ((s.flags(pos) & Unicode.LETTER) != 0) pos++;
                        s.add(pos);
                        continue;
                    }
                }
                // \p{N}{1,3}
                if ((flags & Unicode.NUMBER) != 0) {
                    int ini = pos;
                    while ((s.flags(pos) & Unicode.NUMBER) != 0) {
                        if (++pos - ini >= 3) {
                            s.add(pos);
                            ini = pos;
                        }
                    }
                    s.add(pos);
                    continue;
                }
                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                int flags2 = cpt == ' ' ? s.flags(pos + 1) : flags;
                if ((flags2 & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0 && flags != 0) {
                    if (cpt == ' ') pos++;
                    while (isOtherInRange(flags2)) flags2 = s.flags(++pos);
                    int cpt2 = s.cpt(pos);
                    while (cpt2 == '\r' || cpt2 == '\n') cpt2 = s.cpt(++pos);
                    s.add(pos);
                    continue;
                }
                int nws = 0;
                int lastEndRn = 0;
                while ((s.flags(pos + nws) & Unicode.WHITESPACE) != 0) {
                    int cpt2 = s.cpt(pos + nws);
                    if (cpt2 == '\r' || cpt2 == '\n') lastEndRn = pos + nws + 1;
                    nws++;
                }
                if (lastEndRn > 0) { // \s*[\r\n]+
                    pos = lastEndRn;
                    s.add(pos);
                    continue;
                }
                if (nws > 1 && s.cpt(pos + nws) != Scan.OUT_OF_RANGE) { // \s+(?!\S)
                    pos += nws - 1;
                    s.add(pos);
                    continue;
                }
                if (nws > 0) { // \s+
                    pos += nws;
                    s.add(pos);
                    continue;
                }
                s.add(++pos);
            }
        }
    }

    /** Inside the piece (flags != 0) and neither whitespace, letter nor number. */
    private static boolean isOtherInRange(int flags) {
        return flags != 0 && (flags & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0;
    }

    /** One piece being scanned: positions outside it read as OUT_OF_RANGE with no flags, as in llama.cpp. */
    private static final class Scan {
        static final int OUT_OF_RANGE = -1;
        final int[] cps;
        final int ini;
        final int end;
        final IntList out;
        int prevEnd;

        Scan(int[] cps, int ini, int end, IntList out) {
            this.cps = cps;
            this.ini = ini;
            this.end = end;
            this.out = out;
            this.prevEnd = ini;
        }

        int cpt(int pos) {
            return pos >= ini && pos < end ? cps[pos] : OUT_OF_RANGE;
        }

        int flags(int pos) {
            return pos >= ini && pos < end ? Unicode.flags(cps[pos]) : 0;
        }

        int add(int to) {
            int len = to - prevEnd;
            if (len > 0) out.add(len);
            prevEnd = to;
            return len;
        }
    }

    static final class IntList {
        int[] a;
        int n;

        IntList(int capacity) {
            a = new int[Math.max(4, capacity)];
        }

        void add(int v) {
            if (n == a.length) a = java.util.Arrays.copyOf(a, a.length * 2);
            a[n++] = v;
        }
    }
}
