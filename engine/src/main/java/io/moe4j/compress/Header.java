package io.moe4j.compress;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.zip.CRC32;

/**
 * The header of a compressed file: what a decompressor must match to reproduce the coder's probabilities (format
 * version, moe4j version, the model file's SHA-256, the coding settings) and what it checks the result against
 * (original length and CRC-32). Big-endian; the header ends with the CRC-32 of its own bytes.
 *
 * <pre>
 *   magic "M4JZ" | u8 format | str moe4j version | 32 bytes model SHA-256 | str model file name
 *   | var vocabulary size | var chunk tokens | u8 frequency bits | u8 flags (bit 0: escape symbol) | u8 KV type (0 = F32)
 *   | var original length | u32 original CRC-32 | u32 CRC-32 of the header's bytes before it
 * </pre>
 * str = u8 length + UTF-8 bytes; var = unsigned LEB128 varint. Then one record per chunk: var units, var original
 * bytes, u32 CRC-32 of those bytes, var payload length, payload (range-coded units). The chunks' original bytes add
 * up to the original length. Small inputs are what the overhead matters for: a 5 KB text compresses to some 800
 * bytes, of which the header takes about 85 and each chunk record 8 beyond its payload.
 */
record Header(String moe4jVersion, byte[] modelSha256, String modelName, int vocab, int chunkTokens, int frequencyBits,
              boolean escapes, long originalLength, int originalCrc) {
    static final byte[] MAGIC = {'M', '4', 'J', 'Z'};
    static final int FORMAT = 1;

    void write(OutputStream out) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(buf);
        d.write(MAGIC);
        d.writeByte(FORMAT);
        writeString(d, moe4jVersion);
        d.write(modelSha256);
        writeString(d, modelName);
        writeVarint(d, vocab);
        writeVarint(d, chunkTokens);
        d.writeByte(frequencyBits);
        d.writeByte(escapes ? 1 : 0);
        d.writeByte(0);
        writeVarint(d, originalLength);
        d.writeInt(originalCrc);
        byte[] bytes = buf.toByteArray();
        CRC32 crc = new CRC32();
        crc.update(bytes);
        out.write(bytes);
        new DataOutputStream(out).writeInt((int) crc.getValue());
    }

    static Header read(InputStream in) throws IOException {
        CRC32 crc = new CRC32();
        DataInputStream d = new DataInputStream(new java.util.zip.CheckedInputStream(in, crc));
        try {
            byte[] magic = new byte[MAGIC.length];
            d.readFully(magic);
            if (!Arrays.equals(magic, MAGIC)) throw new CorruptDataException("not a moe4j compressed file (no moe4j header)");
            int format = d.readUnsignedByte();
            if (format != FORMAT) {
                throw new CorruptDataException("the file is in compressed format version " + format
                        + ", this moe4j reads version " + FORMAT);
            }
            String version = readString(d);
            byte[] sha = new byte[32];
            d.readFully(sha);
            String name = readString(d);
            int vocab = (int) Math.min(Integer.MAX_VALUE, readVarint(d));
            int chunkTokens = (int) Math.min(Integer.MAX_VALUE, readVarint(d));
            int bits = d.readUnsignedByte();
            int flags = d.readUnsignedByte();
            int kvType = d.readUnsignedByte();
            long length = readVarint(d);
            int originalCrc = d.readInt();
            int expected = (int) crc.getValue();
            int stored = new DataInputStream(in).readInt();
            if (stored != expected) throw new CorruptDataException("the header of the compressed file is damaged (checksum mismatch)");
            if (bits != Frequencies.BITS || kvType != 0 || (flags & ~1) != 0 || chunkTokens <= 0 || length < 0 || vocab <= 0) {
                throw new CorruptDataException("the compressed file has settings this moe4j does not write (frequency bits "
                        + bits + ", KV type " + kvType + ", flags " + flags + ")");
            }
            return new Header(version, sha, name, vocab, chunkTokens, bits, (flags & 1) != 0, length, originalCrc);
        } catch (EOFException e) {
            throw new CorruptDataException("the compressed file is truncated: it ends inside its header");
        }
    }

    String modelHash() {
        return HexFormat.of().formatHex(modelSha256);
    }

    private static void writeString(DataOutputStream d, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > 255) b = java.util.Arrays.copyOf(b, 255);
        d.writeByte(b.length);
        d.write(b);
    }

    static void writeVarint(DataOutputStream d, long v) throws IOException {
        while ((v & ~0x7FL) != 0) {
            d.writeByte((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        d.writeByte((int) v);
    }

    /** An unsigned LEB128 varint of at most 9 bytes (63 bits); longer ones are damage. */
    static long readVarint(DataInputStream d) throws IOException {
        long v = 0;
        for (int shift = 0; shift < 63; shift += 7) {
            int b = d.readUnsignedByte();
            v |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) return v;
        }
        throw new CorruptDataException("the compressed file is damaged (a malformed number)");
    }

    private static String readString(DataInputStream d) throws IOException {
        byte[] b = new byte[d.readUnsignedByte()];
        d.readFully(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
