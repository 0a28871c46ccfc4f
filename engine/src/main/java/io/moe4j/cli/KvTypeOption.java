package io.moe4j.cli;

import io.moe4j.kernels.KvType;
import picocli.CommandLine.Option;

/**
 * {@code --kv-type f16|f32|q8_0}, shared by the commands that generate or measure (F16 by default; {@code logits},
 * a verification tool, has its own with F32).
 */
public final class KvTypeOption {
    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "f16", converter = KvTypeConverter.class,
            description = "The element type of the KV cache: f16, f32 or q8_0 (ggml's 8-bit blocks) (default: ${DEFAULT-VALUE}).")
    KvType type;

    public KvType type() {
        return type;
    }
}
