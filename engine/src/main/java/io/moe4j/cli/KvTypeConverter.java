package io.moe4j.cli;

import io.moe4j.kernels.KvType;
import picocli.CommandLine;

/** Parses {@code f32} / {@code f16} / {@code q8_0} for {@code --kv-type}. */
public final class KvTypeConverter implements CommandLine.ITypeConverter<KvType> {
    @Override
    public KvType convert(String value) {
        return switch (value.toLowerCase()) {
            case "f32" -> KvType.F32;
            case "f16" -> KvType.F16;
            case "q8_0" -> KvType.Q8_0;
            default -> throw new CommandLine.TypeConversionException("KV type must be f32, f16 or q8_0, got '" + value + "'");
        };
    }
}
