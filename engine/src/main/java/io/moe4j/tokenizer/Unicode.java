package io.moe4j.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Code point classification with llama.cpp's conventions (its {@code unicode_cpt_flags}): exactly one general
 * category group per code point (letter, number, separator, mark, punctuation, symbol, or "other", which includes
 * unassigned code points) plus a separate whitespace bit that follows the Unicode {@code White_Space} property
 * (so U+001C..U+001F are not whitespace, U+00A0 and U+202F are).
 */
final class Unicode {
    static final int NUMBER = 0x0002;
    static final int LETTER = 0x0004;
    static final int SEPARATOR = 0x0008;
    static final int MARK = 0x0010;
    static final int PUNCTUATION = 0x0020;
    static final int SYMBOL = 0x0040;
    static final int CONTROL = 0x0080;
    static final int CATEGORY_MASK = 0x00FF;
    static final int WHITESPACE = 0x0100;

    private static final short[] BMP = new short[0x10000];

    static {
        for (int cp = 0; cp < 0x10000; cp++) BMP[cp] = (short) compute(cp);
    }

    private Unicode() {
    }

    static int flags(int cp) {
        return cp >= 0 && cp < 0x10000 ? BMP[cp] : compute(cp);
    }

    static boolean isLetter(int cp) {
        return (flags(cp) & LETTER) != 0;
    }

    static boolean isNumber(int cp) {
        return (flags(cp) & NUMBER) != 0;
    }

    static boolean isWhitespace(int cp) {
        return (flags(cp) & WHITESPACE) != 0;
    }

    /** Unicode White_Space, as Python's {@code regex} module {@code \s} (which generated llama.cpp's table). */
    static boolean whiteSpaceProperty(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    private static int compute(int cp) {
        if (cp < 0 || cp > Character.MAX_CODE_POINT) return 0x0001; // llama.cpp: UNDEFINED
        int f = switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> MARK;
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> PUNCTUATION;
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL,
                 Character.OTHER_SYMBOL -> SYMBOL;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SEPARATOR;
            default -> CONTROL; // Cc, Cf, Co, Cs and unassigned (Cn), as \p{C} does
        };
        if (whiteSpaceProperty(cp)) f |= WHITESPACE;
        return f;
    }

    /** Length of a UTF-8 sequence from its first byte, as llama.cpp's {@code unicode_len_utf8} (1 for stray bytes). */
    static int utf8Length(byte lead) {
        int hi = (lead & 0xFF) >>> 4;
        return hi < 12 ? 1 : hi < 14 ? 2 : hi == 14 ? 3 : 4;
    }

    /** The text as it reaches llama.cpp: lone surrogates (not encodable in UTF-8) become '?', as getBytes does. */
    static String sanitize(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                    i++;
                    continue;
                }
                return new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
            }
        }
        return text;
    }
}
