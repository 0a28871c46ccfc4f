package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes one safetensors file, streaming each tensor's bytes from a producer; the header (padded with spaces to a
 * multiple of 8 bytes, as the reference implementation does) is known up front from the shapes. Written to a
 * temporary file in the same folder and renamed when complete; on any failure the temporary file is deleted.
 */
public final class SafetensorsWriter {

    /** Receives a tensor's bytes. */
    public interface Sink {
        void write(MemorySegment bytes);
    }

    /** Writes exactly the tensor's byte size to the sink. */
    @FunctionalInterface
    public interface Producer {
        void produce(Sink out) throws IOException;
    }

    public record Tensor(String name, DType dtype, long[] shape, Producer producer) {
        public long byteSize() {
            long n = dtype.bytes;
            for (long d : shape) n *= d;
            return n;
        }
    }

    private SafetensorsWriter() {
    }

    public static long dataBytes(List<Tensor> tensors) {
        long n = 0;
        for (Tensor t : tensors) n += t.byteSize();
        return n;
    }

    public static Path write(Path file, Map<String, String> metadata, List<Tensor> tensors) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode md = header.putObject("__metadata__");
            metadata.forEach(md::put);
        }
        long off = 0;
        for (Tensor t : tensors) {
            if (header.has(t.name())) throw new ModelFormatException(file + ": duplicate tensor name '" + t.name() + "'");
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", t.dtype().name());
            ArrayNode sh = e.putArray("shape");
            for (long d : t.shape()) sh.add(d);
            ArrayNode o = e.putArray("data_offsets");
            o.add(off);
            off += t.byteSize();
            o.add(off);
        }
        byte[] json;
        try {
            json = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] h = Arrays.copyOf(json, padded);
        Arrays.fill(h, json.length, padded, (byte) ' ');

        Path target = file.toAbsolutePath().normalize();
        Path dir = target.getParent();
        if (dir == null || !Files.isDirectory(dir)) throw new Moe4jException("cannot write " + target + ": folder " + dir + " does not exist");
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 16));
        boolean ok = false;
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).flip();
            drain(ch, len);
            drain(ch, ByteBuffer.wrap(h));
            for (Tensor t : tensors) {
                long[] written = {0};
                long need = t.byteSize();
                t.producer().produce(bytes -> {
                    if (written[0] + bytes.byteSize() > need) {
                        throw new ModelFormatException(target + ": tensor '" + t.name() + "' needs " + need + " bytes, its producer wrote more");
                    }
                    try {
                        for (long p = 0; p < bytes.byteSize(); p += 1L << 30) {
                            drain(ch, bytes.asSlice(p, Math.min(1L << 30, bytes.byteSize() - p)).asByteBuffer());
                        }
                    } catch (IOException e) {
                        throw new Moe4jException("writing " + target + " failed: " + e.getMessage(), e);
                    }
                    written[0] += bytes.byteSize();
                });
                if (written[0] != need) {
                    throw new ModelFormatException(target + ": tensor '" + t.name() + "' needs " + need + " bytes, its producer wrote " + written[0]);
                }
            }
            ch.force(true);
            ok = true;
        } catch (IOException e) {
            throw new Moe4jException("writing " + target + " failed: " + e.getMessage(), e);
        } finally {
            if (!ok) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
        try {
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort
            }
            throw new Moe4jException("cannot rename " + tmp + " to " + target + ": " + e.getMessage(), e);
        }
        return target;
    }

    private static void drain(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
