package io.moe4j.tools.hf;

import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.tools.TensorPlan;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code ggml_blocks.safetensors}: the original quantized blocks of an exported GGUF model, so that export then
 * convert gives back the very same bytes even for types whose quantizer is not idempotent (Q4_K, Q6_K). Each entry
 * is a U8 tensor named like the GGUF tensor, its ggml type in the file's {@code __metadata__}. Hugging Face tools
 * ignore the file (it is not a {@code model*.safetensors} shard). Convert uses a block row only when it decodes to
 * exactly the checkpoint's row, so a checkpoint modified after export is requantized where it changed.
 */
public final class GgmlBlocks implements AutoCloseable {
    public static final String FILE = "ggml_blocks.safetensors";

    private final SafetensorsFile file;

    private GgmlBlocks(SafetensorsFile file) {
        this.file = file;
    }

    /** The blocks file of {@code dir}, or null when there is none. */
    public static GgmlBlocks open(Path dir) {
        Path p = dir.resolve(FILE);
        return Files.isRegularFile(p) ? new GgmlBlocks(SafetensorsFile.open(p)) : null;
    }

    /** The recorded blocks of tensor {@code name} if they are of type {@code type} and {@code bytes} long, else null. */
    MemorySegment blocks(String name, GgmlType type, long bytes) {
        String t = file.metadata().get(name);
        SafetensorsFile.Entry e = file.tensors().get(name);
        if (t == null || e == null || !t.equals(type.name()) || e.data().byteSize() != bytes) return null;
        return e.data();
    }

    /** Rows taken from the recorded blocks where they decode to the checkpoint's rows, quantized afresh elsewhere. */
    static TensorPlan.Source verified(RowSource src, GgmlType type, MemorySegment blocks) {
        int cols = src.cols();
        long rowBytes = type.bytesFor(cols);
        return (TensorPlan.RawRows) (first, n, dst) -> {
            float[] want = new float[cols], have = new float[cols];
            for (int i = 0; i < n; i++) {
                long r = first + i;
                src.read(r, want, 0);
                Codec.decode(type, blocks, r * rowBytes, have, 0, cols);
                if (Arrays.equals(want, have)) {
                    MemorySegment.copy(blocks, r * rowBytes, dst, i * rowBytes, rowBytes);
                } else {
                    Codec.encode(type, want, cols, dst, i * rowBytes);
                }
            }
        };
    }

    /** The sidecar entries for the quantized tensors of an export (tensors F32/F16/BF16 are exact in safetensors). */
    static List<SafetensorsWriter.Tensor> entries(List<GgufTensor> quantized, Map<String, String> metadata) {
        List<SafetensorsWriter.Tensor> out = new ArrayList<>();
        for (GgufTensor t : quantized) {
            if (!t.type().isQuantized()) throw new ModelFormatException("tensor " + t + " is not quantized");
            metadata.put(t.name(), t.type().name());
            out.add(new SafetensorsWriter.Tensor(t.name(), DType.U8, new long[]{t.byteSize()}, sink -> sink.write(t.data())));
        }
        return out;
    }

    static Map<String, String> newMetadata() {
        return new LinkedHashMap<>();
    }

    @Override
    public void close() {
        file.close();
    }
}
