package io.moe4j.tools.hf;

import io.moe4j.gguf.ModelFormatException;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * SentencePiece's {@code tokenizer.model}: a protobuf {@code ModelProto} with the pieces (text, score, type), the
 * trainer spec (model type, special ids, byte fallback) and the normalizer spec. Only the fields a llama-style BPE
 * vocabulary needs are read and written; unknown fields are skipped.
 */
public final class SentencePieceModel {
    /** Piece types, numbered as SentencePiece and llama.cpp's token types both number them. */
    public static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    public final List<String> pieces = new ArrayList<>();
    public final List<Float> scores = new ArrayList<>();
    public final List<Integer> types = new ArrayList<>();
    /** 1 unigram, 2 BPE */
    public int modelType = 2;
    public int unkId = 0, bosId = 1, eosId = 2, padId = -1;
    public boolean byteFallback = true;
    public boolean addDummyPrefix = true;

    public static SentencePieceModel parse(byte[] data, String where) {
        SentencePieceModel m = new SentencePieceModel();
        try {
            Reader r = new Reader(data, 0, data.length);
            while (r.more()) {
                int key = (int) r.varint();
                int field = key >>> 3, wire = key & 7;
                if (field == 1 && wire == 2) {
                    Reader p = r.sub();
                    String piece = null;
                    float score = 0;
                    int type = NORMAL;
                    while (p.more()) {
                        int k = (int) p.varint();
                        int f = k >>> 3, w = k & 7;
                        if (f == 1 && w == 2) piece = p.string();
                        else if (f == 2 && w == 5) score = p.fixed32();
                        else if (f == 3 && w == 0) type = (int) p.varint();
                        else p.skip(w);
                    }
                    if (piece == null) throw new ModelFormatException(where + ": a piece without text");
                    m.pieces.add(piece);
                    m.scores.add(score);
                    m.types.add(type);
                } else if (field == 2 && wire == 2) {
                    Reader t = r.sub();
                    while (t.more()) {
                        int k = (int) t.varint();
                        int f = k >>> 3, w = k & 7;
                        if (w != 0) {
                            t.skip(w);
                            continue;
                        }
                        long v = t.varint();
                        switch (f) {
                            case 3 -> m.modelType = (int) v;
                            case 35 -> m.byteFallback = v != 0;
                            case 40 -> m.unkId = (int) v;
                            case 41 -> m.bosId = (int) v;
                            case 42 -> m.eosId = (int) v;
                            case 43 -> m.padId = (int) v;
                            default -> {
                            }
                        }
                    }
                } else if (field == 3 && wire == 2) {
                    Reader n = r.sub();
                    while (n.more()) {
                        int k = (int) n.varint();
                        int f = k >>> 3, w = k & 7;
                        if (f == 3 && w == 0) m.addDummyPrefix = n.varint() != 0;
                        else n.skip(w);
                    }
                } else {
                    r.skip(wire);
                }
            }
        } catch (IndexOutOfBoundsException | IllegalStateException e) {
            throw new ModelFormatException(where + ": not a valid SentencePiece model (" + e.getMessage() + ")");
        }
        if (m.pieces.isEmpty()) throw new ModelFormatException(where + ": the SentencePiece model has no pieces");
        return m;
    }

    public byte[] serialize() {
        Writer out = new Writer();
        for (int i = 0; i < pieces.size(); i++) {
            Writer p = new Writer();
            p.tag(1, 2).bytes(pieces.get(i).getBytes(StandardCharsets.UTF_8));
            p.tag(2, 5).fixed32(scores.get(i));
            p.tag(3, 0).varint(types.get(i));
            out.tag(1, 2).bytes(p.toBytes());
        }
        Writer t = new Writer();
        t.tag(3, 0).varint(modelType);
        t.tag(4, 0).varint(pieces.size());
        t.tag(35, 0).varint(byteFallback ? 1 : 0);
        t.tag(40, 0).varint(unkId);
        t.tag(41, 0).varint(bosId);
        t.tag(42, 0).varint(eosId);
        t.tag(43, 0).varint(padId);
        out.tag(2, 2).bytes(t.toBytes());
        Writer n = new Writer();
        n.tag(1, 2).bytes("identity".getBytes(StandardCharsets.UTF_8));
        n.tag(3, 0).varint(addDummyPrefix ? 1 : 0);
        n.tag(4, 0).varint(0);
        n.tag(5, 0).varint(1);
        out.tag(3, 2).bytes(n.toBytes());
        return out.toBytes();
    }

    private static final class Reader {
        final byte[] b;
        int pos;
        final int end;

        Reader(byte[] b, int pos, int end) {
            this.b = b;
            this.pos = pos;
            this.end = end;
        }

        boolean more() {
            return pos < end;
        }

        long varint() {
            long v = 0;
            for (int s = 0; s < 70; s += 7) {
                if (pos >= end) throw new IllegalStateException("truncated varint");
                int x = b[pos++] & 0xFF;
                v |= (long) (x & 0x7F) << s;
                if (x < 0x80) return v;
            }
            throw new IllegalStateException("varint too long");
        }

        Reader sub() {
            int len = (int) varint();
            if (len < 0 || pos + len > end) throw new IllegalStateException("truncated message");
            Reader r = new Reader(b, pos, pos + len);
            pos += len;
            return r;
        }

        String string() {
            Reader s = sub();
            return new String(b, s.pos, s.end - s.pos, StandardCharsets.UTF_8);
        }

        float fixed32() {
            if (pos + 4 > end) throw new IllegalStateException("truncated float");
            float f = ByteBuffer.wrap(b, pos, 4).order(ByteOrder.LITTLE_ENDIAN).getFloat();
            pos += 4;
            return f;
        }

        void skip(int wire) {
            switch (wire) {
                case 0 -> varint();
                case 1 -> pos += 8;
                case 2 -> sub();
                case 5 -> pos += 4;
                default -> throw new IllegalStateException("unsupported wire type " + wire);
            }
            if (pos > end) throw new IllegalStateException("truncated field");
        }
    }

    private static final class Writer {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Writer tag(int field, int wire) {
            return varint((long) field << 3 | wire);
        }

        Writer varint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) (v & 0x7F) | 0x80);
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Writer bytes(byte[] b) {
            varint(b.length);
            out.writeBytes(b);
            return this;
        }

        Writer fixed32(float f) {
            int x = Float.floatToRawIntBits(f);
            for (int i = 0; i < 4; i++) out.write(x >>> (8 * i) & 0xFF);
            return this;
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }
}
