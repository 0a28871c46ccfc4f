package io.moe4j.tokenizer;

import io.moe4j.gguf.GgufMetadata;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.ModelFormatException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A tokenizer read from GGUF metadata ({@code tokenizer.ggml.*}) that reproduces llama.cpp's tokenization
 * ({@code llama_tokenize}) and detokenization ({@code llama_detokenize}, {@code llama_token_to_piece}) exactly.
 * Two vocabulary types are supported: SentencePiece-style ({@code tokenizer.ggml.model = "llama"}) and byte-level BPE
 * ({@code "gpt2"}, with the pre-tokenizer named by {@code tokenizer.ggml.pre}).
 *
 * <p>Instances are immutable and thread-safe. Token ids are {@code 0 <= id < vocabSize()}; methods returning an id
 * return -1 for "none".
 */
public abstract sealed class Tokenizer permits SpmTokenizer, BpeTokenizer {
    private static final System.Logger LOG = System.getLogger(Tokenizer.class.getName());

    /** The two algorithms. */
    public enum Kind {
        /** SentencePiece-style: spaces as U+2581, dummy prefix space, highest-score merges, byte fallback. */
        SPM,
        /** Byte-level BPE (GPT-2 style): regex pre-tokenizer, bytes as printable characters, ranked merges. */
        BPE
    }

    // llama.cpp's llama_token_attr bits
    static final int ATTR_UNKNOWN = 1;
    static final int ATTR_UNUSED = 1 << 1;
    static final int ATTR_NORMAL = 1 << 2;
    static final int ATTR_CONTROL = 1 << 3;
    static final int ATTR_USER_DEFINED = 1 << 4;
    static final int ATTR_BYTE = 1 << 5;
    static final int ATTR_LSTRIP = 1 << 7;
    static final int ATTR_RSTRIP = 1 << 8;

    private static final byte[] EMPTY = new byte[0];

    final String source;
    final String[] tokens;
    final float[] scores;
    final int[] attrs;
    final Map<String, Integer> ids;

    final int bos;
    final int eos;
    final int eot;
    final int eom;
    final int unk;
    final boolean addBos;
    final boolean addEos;
    final boolean addSpacePrefix;
    final boolean cleanSpaces;

    private final BitSet eog;
    /** CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first: matched in the text before tokenization. */
    private final int[] specialTokens;
    private final SpecialTrie specialTrie;
    /** What each token renders as with special tokens shown (llama.cpp's token-to-piece cache). */
    private final byte[][] pieces;

    /** Everything read from the metadata before the algorithm-specific parts; see {@link #fromGguf}. */
    record Spec(String source, Kind kind, String[] tokens, float[] scores, int[] attrs, Map<String, Integer> ids,
                int bos, int eos, int eot, int eom, int unk, boolean addBos, boolean addEos, boolean addSpacePrefix,
                boolean cleanSpaces, BitSet eog, GgufMetadata md) {
    }

    Tokenizer(Spec s) {
        this.source = s.source;
        this.tokens = s.tokens;
        this.scores = s.scores;
        this.attrs = s.attrs;
        this.ids = s.ids;
        this.bos = s.bos;
        this.eos = s.eos;
        this.eot = s.eot;
        this.eom = s.eom;
        this.unk = s.unk;
        this.addBos = s.addBos;
        this.addEos = s.addEos;
        this.addSpacePrefix = s.addSpacePrefix;
        this.cleanSpaces = s.cleanSpaces;
        this.eog = s.eog;

        int n = tokens.length;
        List<Integer> special = new ArrayList<>();
        for (int id = 0; id < n; id++) {
            if ((attrs[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0) special.add(id);
        }
        // llama.cpp sorts by text length, longest first (ties: by id here, llama.cpp's std::sort leaves them open)
        special.sort((a, b) -> Integer.compare(tokens[b].length(), tokens[a].length()));
        this.specialTokens = special.stream().mapToInt(Integer::intValue).toArray();

        this.pieces = new byte[n][];
        for (int id = 0; id < n; id++) pieces[id] = computePiece(id);

        // per-token attributes that llama.cpp sets by model name (after the piece cache, as it does)
        String modelName = s.md.getString("general.name", "").toLowerCase(Locale.ROOT);
        String pre = s.md.getString("tokenizer.ggml.pre", "");
        String arch = s.md.getString("general.architecture", "");
        if (pre.contains("jina-v2-de") || pre.contains("jina-v2-es") || pre.contains("jina-v2-code")
                || arch.contains("nomic-bert-moe") || arch.contains("jina-bert-v3")) {
            setAttr("<mask>", ATTR_LSTRIP, true);
        } else if (modelName.contains("phi-3") || modelName.contains("phi3")) {
            for (int id : specialTokens) attrs[id] |= ATTR_RSTRIP;
            setAttr("</s>", ATTR_RSTRIP, true);
            for (String t : List.of("<unk>", "<s>", "<|endoftext|>")) setAttr(t, ATTR_RSTRIP, false);
        } else if (modelName.contains("modern-bert")) {
            setAttr("[MASK]", ATTR_LSTRIP, true);
        }
        this.specialTrie = new SpecialTrie(tokens, specialTokens);
    }

    private void setAttr(String token, int attr, boolean value) {
        Integer id = ids.get(token);
        if (id == null) return;
        attrs[id] = value ? attrs[id] | attr : attrs[id] & ~attr;
    }

    // ---- construction from GGUF ----------------------------------------------------------------------------------

    /**
     * Reads the tokenizer of a GGUF file. Throws {@link ModelFormatException} when the metadata is missing,
     * malformed, or names a tokenizer model other than "llama" (SentencePiece) and "gpt2" (byte-level BPE).
     */
    public static Tokenizer fromGguf(GgufMetadata md) {
        String src = md.source();
        String model = md.getString("tokenizer.ggml.model");
        Kind kind = switch (model) {
            case "llama" -> Kind.SPM;
            case "gpt2" -> Kind.BPE;
            default -> throw new ModelFormatException(src + ": tokenizer model '" + model
                    + "' is not supported (supported: 'llama' = SentencePiece, 'gpt2' = byte-level BPE)");
        };

        String[] tokens = md.getStringArray("tokenizer.ggml.tokens").clone();
        int n = tokens.length;
        if (n == 0) throw new ModelFormatException(src + ": tokenizer.ggml.tokens is empty");
        float[] scores = readScores(md, n);
        int[] types = null;
        if (md.has("tokenizer.ggml.token_type")) {
            types = md.getIntArray("tokenizer.ggml.token_type");
            if (types.length < n) {
                throw new ModelFormatException(src + ": tokenizer.ggml.token_type has " + types.length + " entries for " + n + " tokens");
            }
        }

        // defaults of llama.cpp's llama_vocab::impl::load
        int bos;
        int eos;
        int unk;
        boolean addSpacePrefix;
        boolean cleanSpaces;
        boolean addBos;
        boolean addEos = false;
        PreTokenizer.Config pre = null;
        if (kind == Kind.SPM) {
            bos = 1;
            eos = 2;
            unk = 0;
            addSpacePrefix = true;
            cleanSpaces = false;
            addBos = true;
        } else {
            bos = 11;
            eos = 11;
            unk = -1;
            addSpacePrefix = false;
            String preName = md.getString("tokenizer.ggml.pre", "");
            if (preName.isEmpty()) {
                LOG.log(System.Logger.Level.WARNING, src + ": tokenizer.ggml.pre is missing, using llama.cpp's 'default'"
                        + " pre-tokenizer; generation quality may be degraded");
                pre = PreTokenizer.config("default");
            } else {
                pre = PreTokenizer.config(preName);
                if (pre == null) {
                    LOG.log(System.Logger.Level.WARNING, src + ": unknown pre-tokenizer '" + preName
                            + "', falling back to 'gpt-2'; tokenization may differ from the model's own");
                    pre = PreTokenizer.config("gpt-2");
                }
            }
            cleanSpaces = pre.cleanSpaces();
            addBos = pre.addBos();
            if (pre.noBos()) bos = -1;
        }
        addSpacePrefix = md.getBool("tokenizer.ggml.add_space_prefix", addSpacePrefix);

        Map<String, Integer> ids = new HashMap<>(n * 2);
        int[] attrs = new int[n];
        for (int i = 0; i < n; i++) {
            if (tokens[i].isEmpty()) {
                LOG.log(System.Logger.Level.WARNING, src + ": empty token at index " + i);
                tokens[i] = "[EMPTY_" + i + "]";
            }
            Integer prev = ids.putIfAbsent(tokens[i], i);
            if (prev != null) {
                // llama.cpp refuses such a vocabulary; the first id is kept here (GGUF strings are decoded as UTF-8
                // and invalid bytes, which llama.cpp would keep apart, can collide)
                LOG.log(System.Logger.Level.WARNING, src + ": duplicate token '" + tokens[i] + "' has ids " + prev + " and " + i);
            }
            attrs[i] = types == null ? ATTR_NORMAL : switch (types[i]) {
                case 1 -> ATTR_NORMAL;
                case 2 -> ATTR_UNKNOWN;
                case 3 -> ATTR_CONTROL;
                case 4 -> ATTR_USER_DEFINED;
                case 5 -> ATTR_UNUSED;
                case 6 -> ATTR_BYTE;
                default -> 0; // UNDEFINED
            };
        }

        // special token ids from the metadata (out-of-range values are ignored with a warning, as llama.cpp does)
        bos = specialId(md, "tokenizer.ggml.bos_token_id", bos, n);
        eos = specialId(md, "tokenizer.ggml.eos_token_id", eos, n);
        int eot = specialId(md, "tokenizer.ggml.eot_token_id", -1, n);
        int eom = specialId(md, "tokenizer.ggml.eom_token_id", -1, n);
        unk = specialId(md, "tokenizer.ggml.unknown_token_id", unk, n);
        int fimPre = specialId(md, "tokenizer.ggml.prefix_token_id", specialId(md, "tokenizer.ggml.fim_pre_token_id", -1, n), n);
        int fimSuf = specialId(md, "tokenizer.ggml.suffix_token_id", specialId(md, "tokenizer.ggml.fim_suf_token_id", -1, n), n);
        int fimMid = specialId(md, "tokenizer.ggml.middle_token_id", specialId(md, "tokenizer.ggml.fim_mid_token_id", -1, n), n);
        int fimPad = specialId(md, "tokenizer.ggml.fim_pad_token_id", -1, n);
        int fimRep = specialId(md, "tokenizer.ggml.fim_rep_token_id", -1, n);
        int fimSep = specialId(md, "tokenizer.ggml.fim_sep_token_id", -1, n);

        addBos = md.getBool("tokenizer.ggml.add_bos_token", addBos);
        addEos = md.getBool("tokenizer.ggml.add_eos_token", addEos);
        if (addBos && bos < 0) {
            throw new ModelFormatException(src + ": tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        }
        if (addEos && eos < 0) {
            throw new ModelFormatException(src + ": tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
        }

        // llama.cpp finds EOT/EOM/FIM tokens by their text when the metadata does not name them, and makes them
        // CONTROL tokens. Candidates are tried in id order (llama.cpp walks a hash map: any one of them can win).
        eot = eot >= 0 ? eot : findByText(tokens, attrs, EOT_TEXTS);
        eom = eom >= 0 ? eom : findByText(tokens, attrs, List.of("<|eom_id|>"));
        fimPre = fimPre >= 0 ? fimPre : findByText(tokens, attrs, List.of("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"));
        fimSuf = fimSuf >= 0 ? fimSuf : findByText(tokens, attrs, List.of("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"));
        fimMid = fimMid >= 0 ? fimMid : findByText(tokens, attrs, List.of("<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"));
        fimPad = fimPad >= 0 ? fimPad : findByText(tokens, attrs, List.of("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"));
        fimRep = fimRep >= 0 ? fimRep : findByText(tokens, attrs, List.of("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"));
        fimSep = fimSep >= 0 ? fimSep : findByText(tokens, attrs, List.of("<|file_sep|>"));

        // control tokens named "unused" are unused
        for (int i = 0; i < n; i++) {
            if ((attrs[i] & ATTR_CONTROL) != 0 && tokens[i].contains("unused")) attrs[i] |= ATTR_UNUSED;
        }

        // end-of-generation tokens
        BitSet eog = new BitSet(n);
        for (int id : new int[] {fimPad, fimRep, fimSep}) if (id >= 0) eog.set(id);
        for (int i = 0; i < n; i++) {
            if (EOG_TEXTS.contains(tokens[i])) {
                eog.set(i);
                attrs[i] |= ATTR_CONTROL;
            }
        }
        // gpt-oss: these are always rendered
        for (String t : List.of("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")) {
            Integer id = ids.get(t);
            if (id != null) attrs[id] = ATTR_USER_DEFINED;
        }
        for (int id : new int[] {eos, eot, eom}) if (id >= 0) eog.set(id);
        // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation
        int endId = -1;
        boolean hasReturn = false;
        boolean hasCall = false;
        boolean hasFlush = false;
        int sId = -1;
        boolean hasToolResponse = false;
        for (int id = eog.nextSetBit(0); id >= 0; id = eog.nextSetBit(id + 1)) {
            switch (tokens[id]) {
                case "<|return|>" -> hasReturn = true;
                case "<|call|>", "<|calls|>" -> hasCall = true;
                case "<|flush|>" -> hasFlush = true;
                case "<|end|>" -> endId = id;
                case "<|tool_response>" -> hasToolResponse = true;
                case "</s>" -> sId = id;
                default -> { }
            }
        }
        if (endId >= 0 && ((hasReturn && hasCall) || (hasCall && hasFlush))) {
            eog.clear(endId);
            attrs[endId] = ATTR_USER_DEFINED;
        }
        if (hasToolResponse && sId >= 0) { // gemma4 / paddleocr
            eog.clear(sId);
            attrs[sId] = ATTR_NORMAL;
        }

        Spec spec = new Spec(src, kind, tokens, scores, attrs, ids, bos, eos, eot, eom, unk, addBos, addEos,
                addSpacePrefix, cleanSpaces, eog, md);
        if (kind == Kind.SPM) return new SpmTokenizer(spec);
        String[] merges = md.getStringArray("tokenizer.ggml.merges");
        return new BpeTokenizer(spec, pre, merges);
    }

    private static final List<String> EOT_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
            "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>");

    private static final java.util.Set<String> EOG_TEXTS = java.util.Set.of("<|eot_id|>", "<|im_end|>", "<|end|>",
            "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>",
            "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
            "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[");

    private static int findByText(String[] tokens, int[] attrs, List<String> texts) {
        for (int i = 0; i < tokens.length; i++) {
            if (texts.contains(tokens[i])) {
                attrs[i] |= ATTR_CONTROL;
                return i;
            }
        }
        return -1;
    }

    private static float[] readScores(GgufMetadata md, int n) {
        String key = "tokenizer.ggml.scores";
        if (!md.has(key)) return new float[n];
        GgufValue v = md.get(key);
        float[] scores;
        if (v.value() instanceof int[] a) {
            scores = new float[a.length];
            for (int i = 0; i < a.length; i++) scores[i] = a[i];
        } else {
            scores = md.getFloatArray(key);
        }
        if (scores.length < n) {
            throw new ModelFormatException(md.source() + ": " + key + " has " + scores.length + " entries for " + n + " tokens");
        }
        return scores;
    }

    private static int specialId(GgufMetadata md, String key, int fallback, int n) {
        if (fallback >= n) {
            LOG.log(System.Logger.Level.WARNING, md.source() + ": default " + key + " = " + fallback + " is out of the vocabulary, disabled");
            fallback = -1;
        }
        if (!md.has(key)) return fallback;
        long v = md.getLong(key);
        if (v < 0 || v >= n) {
            if (v != 0xFFFFFFFFL && v != -1) {
                LOG.log(System.Logger.Level.WARNING, md.source() + ": bad special token " + key + " = " + v + ", using " + fallback);
            }
            return fallback;
        }
        return (int) v;
    }

    // ---- public API ----------------------------------------------------------------------------------------------

    public abstract Kind kind();

    /** The pre-tokenizer in use: llama.cpp's name of its regex set ("default" for SentencePiece vocabularies). */
    public abstract String preTokenizer();

    /**
     * Tokenizes {@code text} as llama.cpp's {@code llama_tokenize} does.
     *
     * @param addBos       prepend {@link #bos()} (use {@link #addBosByDefault()} for the model's own choice); no EOS
     *                     is ever appended, append {@link #eos()} yourself when {@link #addEosByDefault()} says so
     * @param parseSpecial when true, control tokens written in the text (e.g. {@code "<s>"}, {@code "<|im_end|>"})
     *                     become those tokens; when false they are tokenized as plain text. User-defined tokens are
     *                     always matched as whole tokens, as in llama.cpp
     */
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        String t = Unicode.sanitize(text);
        PreTokenizer.IntList out = new PreTokenizer.IntList(Math.max(16, t.length() / 3));
        if (addBos) {
            if (bos < 0) throw new IllegalStateException(source + ": the vocabulary has no BOS token");
            out.add(bos);
        }
        encodeFragments(t, partition(t, parseSpecial), out, true);
        return Arrays.copyOf(out.a, out.n);
    }

    /**
     * Tokenizes a piece of a longer text that was cut into pieces, so that the tokens of each piece render exactly
     * that piece: no BOS, control tokens in the text not parsed, and no SentencePiece dummy-prefix space (which
     * llama.cpp puts in front of a text and after each special token). The compressor tokenizes its input this way.
     */
    public int[] encodeContinuation(String text) {
        String t = Unicode.sanitize(text);
        PreTokenizer.IntList out = new PreTokenizer.IntList(Math.max(16, t.length() / 3));
        encodeFragments(t, partition(t, false), out, false);
        return Arrays.copyOf(out.a, out.n);
    }

    /** Whether the model expects a BOS token at the start of a prompt (tokenizer.ggml.add_bos_token or llama.cpp's default). */
    public boolean addBosByDefault() {
        return addBos;
    }

    /** Whether the model expects an EOS token at the end of a prompt (tokenizer.ggml.add_eos_token, default false). */
    public boolean addEosByDefault() {
        return addEos;
    }

    /**
     * The text of {@code ids}, as {@code llama_detokenize(..., remove_special=false, unparse_special=false)}: control
     * and unknown tokens render as nothing; for SentencePiece vocabularies one leading space of the first token's
     * text is dropped (the dummy prefix), unless the first token is BOS or another control token, as in llama.cpp.
     * Invalid UTF-8 (e.g. a character cut in the middle) becomes U+FFFD.
     */
    public String decode(int[] ids) {
        return decode(ids, false, false);
    }

    /**
     * {@code llama_detokenize} with its two flags: {@code removeSpecial} drops a leading BOS (and a trailing EOS)
     * where the model adds them by default, {@code unparseSpecial} renders control tokens as their text.
     * Byte-level BPE vocabularies with llama.cpp's clean-up of spaces (gpt-2, falcon, starcoder, ...) also drop a
     * space before {@code ?!.,} and in front of {@code 's 'm 're 've}, as llama.cpp does.
     */
    public String decode(int[] ids, boolean removeSpecial, boolean unparseSpecial) {
        int from = 0;
        int to = ids.length;
        boolean removeSpace = addSpacePrefix;
        if (removeSpecial && addBos && to > 0 && ids[0] == bos) {
            removeSpace = false;
            from = 1;
        }
        if (removeSpecial && addEos && to > from && ids[to - 1] == eos) to--;
        int total = 0;
        for (int i = from; i < to; i++) total += piece(ids[i], unparseSpecial).length;
        byte[] buf = new byte[total];
        int len = 0;
        for (int i = from; i < to; i++) {
            byte[] p = piece(ids[i], unparseSpecial);
            int off = removeSpace && p.length > 0 && p[0] == ' ' ? 1 : 0;
            removeSpace = false; // only the first token's piece, as llama.cpp
            System.arraycopy(p, off, buf, len, p.length - off);
            len += p.length - off;
        }
        if (cleanSpaces) len = cleanUpSpaces(buf, len);
        return new String(buf, 0, len, StandardCharsets.UTF_8);
    }

    /** The bytes token {@code id} stands for in text, control tokens as their text; a fresh array. */
    public byte[] tokenBytes(int id) {
        return tokenBytes(id, true);
    }

    /** The bytes token {@code id} stands for; control and unknown tokens are empty unless {@code renderSpecial}. */
    public byte[] tokenBytes(int id, boolean renderSpecial) {
        return piece(id, renderSpecial).clone();
    }

    public int vocabSize() {
        return tokens.length;
    }

    /** Beginning-of-sequence token, or -1. */
    public int bos() {
        return bos;
    }

    /** End-of-sequence token, or -1. */
    public int eos() {
        return eos;
    }

    /** End-of-turn token (tokenizer.ggml.eot_token_id or found by its text, e.g. {@code <|eot_id|>}), or -1. */
    public int eot() {
        return eot;
    }

    /** Unknown token, or -1. */
    public int unk() {
        return unk;
    }

    /**
     * Whether generation stops at this token: EOS, EOT, EOM, FIM pad/repo/file-separator, and tokens llama.cpp
     * recognizes by their text ({@code <|eot_id|> <|im_end|> <|end|> <|endoftext|> <|return|> <|call|> </s>} ...).
     */
    public boolean isEndOfGeneration(int id) {
        return id >= 0 && eog.get(id);
    }

    /** All end-of-generation tokens, ascending. */
    public int[] endOfGenerationIds() {
        return eog.stream().toArray();
    }

    /** The token's text as stored in the vocabulary (e.g. {@code "▁the"}, {@code "Ġthe"}, {@code "<0x0A>"}). */
    public String tokenText(int id) {
        checkId(id);
        return tokens[id];
    }

    /** The id of the token whose vocabulary text is exactly {@code text}, or -1. */
    public int tokenId(String text) {
        Integer id = ids.get(text);
        return id == null ? -1 : id;
    }

    /** The token's score (SentencePiece merge priority; 0 for BPE vocabularies without scores). */
    public float score(int id) {
        checkId(id);
        return scores[id];
    }

    /** Control, user-defined or unknown token: llama.cpp matches these in the text as whole tokens. */
    public boolean isSpecial(int id) {
        checkId(id);
        return (attrs[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0;
    }

    /** Control token (BOS, EOS, chat markers ...): renders as nothing unless asked for. */
    public boolean isControl(int id) {
        checkId(id);
        return (attrs[id] & ATTR_CONTROL) != 0;
    }

    /** A byte-fallback token ({@code <0xXX>}). */
    public boolean isByte(int id) {
        checkId(id);
        return (attrs[id] & ATTR_BYTE) != 0;
    }

    // ---- internals ----------------------------------------------------------------------------------------------

    /** Tokens of the fragments; {@code dummyPrefix}: SentencePiece's leading space where the vocabulary asks for it. */
    abstract void encodeFragments(String text, List<Fragment> fragments, PreTokenizer.IntList out, boolean dummyPrefix);

    /** How a NORMAL token renders (its text decoded). Called from this class's constructor: no instance state. */
    abstract byte[] normalPiece(String text);

    final void checkId(int id) {
        if (id < 0 || id >= tokens.length) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + tokens.length + ")");
        }
    }

    final byte[] piece(int id, boolean special) {
        checkId(id);
        if (!special && (attrs[id] & (ATTR_UNKNOWN | ATTR_CONTROL)) != 0) return EMPTY;
        return pieces[id];
    }

    private byte[] computePiece(int id) {
        int a = attrs[id];
        String text = tokens[id];
        if ((a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) != 0) return text.getBytes(StandardCharsets.UTF_8);
        if ((a & ATTR_NORMAL) != 0) return normalPiece(text);
        if ((a & ATTR_BYTE) != 0) return new byte[] {(byte) byteOfToken(text)};
        return EMPTY; // unused / undefined tokens render as nothing
    }

    /** The byte of a {@code <0xXX>} token. */
    static int byteOfToken(String text) {
        if (text.length() >= 5) {
            try {
                return Integer.parseInt(text.substring(3, 5), 16);
            } catch (NumberFormatException e) {
                // fall through
            }
        }
        throw new ModelFormatException("byte token '" + text + "' is not of the form <0xXX>");
    }

    /** A piece of the text: a special token ({@code token >= 0}) or raw text {@code [start, end)}. */
    record Fragment(int token, int start, int end) {
    }

    /**
     * llama.cpp's {@code tokenizer_st_partition}: special tokens, longest first, are cut out of the raw text pieces
     * (every occurrence, left to right). Control and unknown tokens only when {@code parseSpecial}.
     */
    final List<Fragment> partition(String text, boolean parseSpecial) {
        List<Fragment> frags = new ArrayList<>();
        if (text.isEmpty()) return frags;
        frags.add(new Fragment(-1, 0, text.length()));
        if (specialTokens.length == 0) return frags;
        BitSet present = specialTrie.occurring(text);
        if (present.isEmpty()) return frags;
        for (int id : specialTokens) {
            if (!present.get(id)) continue;
            int a = attrs[id];
            if (!parseSpecial && (a & (ATTR_CONTROL | ATTR_UNKNOWN)) != 0) continue;
            String t = tokens[id];
            List<Fragment> next = new ArrayList<>(frags.size() + 4);
            for (Fragment f : frags) {
                if (f.token >= 0) {
                    next.add(f);
                    continue;
                }
                int s = f.start;
                int e = f.end;
                while (true) {
                    int m = s < e ? text.indexOf(t, s, e) : -1;
                    if (m < 0) {
                        if (e > s) next.add(new Fragment(-1, s, e));
                        break;
                    }
                    if (m > s) {
                        int leftEnd = m;
                        if ((a & ATTR_LSTRIP) != 0) while (leftEnd > s && isCSpace(text.charAt(leftEnd - 1))) leftEnd--;
                        if (leftEnd > s) next.add(new Fragment(-1, s, leftEnd));
                    }
                    next.add(new Fragment(id, m, m + t.length()));
                    s = m + t.length();
                    if ((a & ATTR_RSTRIP) != 0) while (s < e && isCSpace(text.charAt(s))) s++;
                }
            }
            frags = next;
        }
        return frags;
    }

    /** C's isspace in the "C" locale. */
    private static boolean isCSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    /** llama.cpp's clean-up of tokenization spaces (three passes, in place); returns the new length. */
    static int cleanUpSpaces(byte[] text, int total) {
        // first pass: " ?", " !", " .", " ," lose the space
        int total1 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total1; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
            text[total++] = x;
        }
        // second pass: a single apostrophe between spaces loses both spaces
        int total2 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total2; i++) {
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }
        // third pass: " 's", " 'm", " 're", " 've" lose the space
        int total3 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total3; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
                byte x1 = text[i + 1];
                if (x1 == 's' || x1 == 'm') {
                    total--;
                } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
                }
            }
            text[total++] = x;
        }
        return total;
    }

    /** A character trie of the special tokens' texts: which of them occur in a text, in one pass. */
    private static final class SpecialTrie {
        private static final class Node {
            final HashMap<Character, Node> next = new HashMap<>(4);
            int id = -1;
        }

        private final Node root = new Node();

        SpecialTrie(String[] tokens, int[] special) {
            for (int id : special) {
                Node node = root;
                for (int i = 0; i < tokens[id].length(); i++) node = node.next.computeIfAbsent(tokens[id].charAt(i), c -> new Node());
                node.id = id;
            }
        }

        BitSet occurring(String text) {
            BitSet found = new BitSet();
            for (int i = 0; i < text.length(); i++) {
                Node node = root;
                for (int j = i; j < text.length(); j++) {
                    node = node.next.get(text.charAt(j));
                    if (node == null) break;
                    if (node.id >= 0) found.set(node.id);
                }
            }
            return found;
        }
    }
}
