package io.moe4j.cli;

import io.moe4j.kernels.ops.KvBuffer;
import picocli.CommandLine;

/** Parses {@code f32} / {@code f16} / {@code q8_0} for {@code --kv-type}. */
public final class KvTypeConverter implements CommandLine.ITypeConverter<KvBuffer.Type> {
    @Override
    public KvBuffer.Type convert(String value) {
        return switch (value.toLowerCase()) {
            case "f32" -> KvBuffer.Type.F32;
            case "f16" -> KvBuffer.Type.F16;
            case "q8_0" -> KvBuffer.Type.Q8_0;
            default -> throw new CommandLine.TypeConversionException("KV type must be f32, f16 or q8_0, got '" + value + "'");
        };
    }
}
