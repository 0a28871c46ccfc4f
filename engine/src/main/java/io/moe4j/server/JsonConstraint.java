package io.moe4j.server;

import io.moe4j.batch.TokenSampler;
import io.moe4j.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * {@code response_format: json_object}: only tokens that keep the generated text a prefix of a JSON object may
 * be chosen, and once the object is complete only an end-of-generation token may follow. Whitespace runs are
 * bounded so that a model cannot stall in them.
 */
final class JsonConstraint implements TokenSampler {
    private static final int MAX_WHITESPACE = 16;

    private final TokenSampler inner;
    private final Tokenizer tokenizer;
    private final byte[][] pieces;
    private final int[] eog;
    private JsonState state = new JsonState();

    private JsonConstraint(TokenSampler inner, Tokenizer tokenizer) {
        this.inner = inner;
        this.tokenizer = tokenizer;
        this.pieces = new byte[tokenizer.vocabSize()][];
        this.eog = tokenizer.endOfGenerationIds();
    }

    static TokenSampler wrap(TokenSampler inner, Tokenizer tokenizer) {
        return new JsonConstraint(inner, tokenizer);
    }

    private byte[] piece(int id) {
        byte[] p = pieces[id];
        if (p == null) pieces[id] = p = tokenizer.tokenBytes(id, false);
        return p;
    }

    @Override
    public int sample(float[] logits, int[] history, int length) {
        int n = Math.min(logits.length, pieces.length);
        boolean any = false;
        if (state.done()) {
            float[] keep = new float[eog.length];
            for (int i = 0; i < eog.length; i++) keep[i] = eog[i] < logits.length ? logits[eog[i]] : 0;
            Arrays.fill(logits, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < eog.length; i++) if (eog[i] < logits.length) logits[eog[i]] = Math.max(keep[i], -1e30f);
            any = eog.length > 0;
        } else {
            for (int id = 0; id < n; id++) {
                if (logits[id] == Float.NEGATIVE_INFINITY) continue;
                byte[] p = piece(id);
                boolean ok = p.length > 0 && !tokenizer.isEndOfGeneration(id) && state.copy().acceptAll(p);
                if (ok) any = true;
                else logits[id] = Float.NEGATIVE_INFINITY;
            }
            for (int id = n; id < logits.length; id++) logits[id] = Float.NEGATIVE_INFINITY;
        }
        if (!any) {
            // Nothing can continue the JSON (a vocabulary without the needed characters): let the model end.
            for (int id : eog) if (id < logits.length) logits[id] = 0;
        }
        int chosen = inner.sample(logits, history, length);
        if (chosen >= 0 && chosen < n && !tokenizer.isEndOfGeneration(chosen)) state.acceptAll(piece(chosen));
        return chosen;
    }

    /** A byte-level recognizer of JSON text whose top-level value is an object. */
    static final class JsonState {
        private static final int VALUE = 0, OBJ_FIRST = 1, OBJ_KEY = 2, COLON = 3, AFTER = 4, STRING = 5, ESCAPE = 6,
                UNICODE = 7, NUMBER = 8, LITERAL = 9, DONE = 10, ARR_FIRST = 11;
        // number sub-states
        private static final int N_MINUS = 0, N_ZERO = 1, N_INT = 2, N_DOT = 3, N_FRAC = 4, N_E = 5, N_ESIGN = 6, N_EXP = 7;

        private byte[] stack = new byte[8];
        private int depth;
        private int mode = VALUE;
        private int sub;
        private boolean key;
        private String literal;
        private int literalPos;
        private int whitespace;

        JsonState copy() {
            JsonState c = new JsonState();
            c.stack = stack.clone();
            c.depth = depth;
            c.mode = mode;
            c.sub = sub;
            c.key = key;
            c.literal = literal;
            c.literalPos = literalPos;
            c.whitespace = whitespace;
            return c;
        }

        boolean done() {
            return mode == DONE;
        }

        boolean acceptAll(byte[] bytes) {
            for (byte b : bytes) if (!accept(b & 0xFF)) return false;
            return true;
        }

        private static boolean ws(int c) {
            return c == ' ' || c == '\n' || c == '\t' || c == '\r';
        }

        boolean accept(int c) {
            switch (mode) {
                case STRING -> {
                    if (c == '"') {
                        mode = key ? COLON : AFTER;
                        whitespace = 0;
                    } else if (c == '\\') {
                        mode = ESCAPE;
                    } else if (c < 0x20) {
                        return false;
                    }
                    return true;
                }
                case ESCAPE -> {
                    if (c == 'u') {
                        mode = UNICODE;
                        sub = 0;
                        return true;
                    }
                    if ("\"\\/bfnrt".indexOf(c) < 0) return false;
                    mode = STRING;
                    return true;
                }
                case UNICODE -> {
                    if (Character.digit(c, 16) < 0) return false;
                    if (++sub == 4) mode = STRING;
                    return true;
                }
                case NUMBER -> {
                    if (number(c)) return true;
                    if (sub == N_MINUS || sub == N_DOT || sub == N_E || sub == N_ESIGN) return false;
                    mode = AFTER;
                    whitespace = 0;
                    return accept(c);
                }
                case LITERAL -> {
                    if (c != literal.charAt(literalPos)) return false;
                    if (++literalPos == literal.length()) {
                        mode = AFTER;
                        whitespace = 0;
                    }
                    return true;
                }
                case DONE -> {
                    return false;
                }
                default -> {
                }
            }
            if (ws(c)) {
                if (depth == 0 && mode == VALUE) return false; // the object starts right away
                return ++whitespace <= MAX_WHITESPACE;
            }
            whitespace = 0;
            switch (mode) {
                case VALUE, ARR_FIRST -> {
                    if (mode == ARR_FIRST && c == ']') return close('A');
                    if (depth == 0 && c != '{') return false;
                    return value(c);
                }
                case OBJ_FIRST, OBJ_KEY -> {
                    if (c == '"') {
                        mode = STRING;
                        key = true;
                        return true;
                    }
                    return mode == OBJ_FIRST && c == '}' && close('O');
                }
                case COLON -> {
                    if (c != ':') return false;
                    mode = VALUE;
                    return true;
                }
                case AFTER -> {
                    if (depth == 0) return false;
                    byte top = stack[depth - 1];
                    if (c == ',') {
                        mode = top == 'O' ? OBJ_KEY : VALUE;
                        return true;
                    }
                    if (c == '}' && top == 'O') return close('O');
                    if (c == ']' && top == 'A') return close('A');
                    return false;
                }
                default -> {
                    return false;
                }
            }
        }

        private boolean value(int c) {
            switch (c) {
                case '{' -> {
                    push('O');
                    mode = OBJ_FIRST;
                }
                case '[' -> {
                    push('A');
                    mode = ARR_FIRST;
                }
                case '"' -> {
                    mode = STRING;
                    key = false;
                }
                case 't', 'f', 'n' -> {
                    literal = c == 't' ? "true" : c == 'f' ? "false" : "null";
                    literalPos = 1;
                    mode = LITERAL;
                }
                case '-' -> {
                    mode = NUMBER;
                    sub = N_MINUS;
                }
                default -> {
                    if (c < '0' || c > '9') return false;
                    mode = NUMBER;
                    sub = c == '0' ? N_ZERO : N_INT;
                }
            }
            return true;
        }

        private boolean number(int c) {
            boolean digit = c >= '0' && c <= '9';
            switch (sub) {
                case N_MINUS -> {
                    if (!digit) return false;
                    sub = c == '0' ? N_ZERO : N_INT;
                }
                case N_ZERO, N_INT -> {
                    if (digit && sub == N_INT) return true;
                    if (c == '.') sub = N_DOT;
                    else if (c == 'e' || c == 'E') sub = N_E;
                    else return false;
                }
                case N_DOT, N_FRAC -> {
                    if (digit) sub = N_FRAC;
                    else if (sub == N_FRAC && (c == 'e' || c == 'E')) sub = N_E;
                    else return false;
                }
                case N_E -> {
                    if (digit) sub = N_EXP;
                    else if (c == '+' || c == '-') sub = N_ESIGN;
                    else return false;
                }
                case N_ESIGN, N_EXP -> {
                    if (!digit) return false;
                    sub = N_EXP;
                }
                default -> {
                    return false;
                }
            }
            return true;
        }

        private void push(char kind) {
            if (depth == stack.length) stack = Arrays.copyOf(stack, depth * 2);
            stack[depth++] = (byte) kind;
        }

        private boolean close(char kind) {
            if (depth == 0 || stack[depth - 1] != kind) return false;
            depth--;
            mode = depth == 0 ? DONE : AFTER;
            whitespace = 0;
            return true;
        }
    }
}
