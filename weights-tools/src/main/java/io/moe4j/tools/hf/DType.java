package io.moe4j.tools.hf;

import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;

/** Element types of safetensors files (the names of their JSON header). */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1), F8_E4M3(1), F8_E5M2(1), U16(2), U32(4), U64(8);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public static DType parse(String s, String where) {
        try {
            return valueOf(s);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(where + ": unknown safetensors dtype '" + s + "'");
        }
    }

    /** The ggml type with the same encoding, or null. */
    public GgmlType ggml() {
        return switch (this) {
            case F32 -> GgmlType.F32;
            case F16 -> GgmlType.F16;
            case BF16 -> GgmlType.BF16;
            default -> null;
        };
    }

    public static DType of(GgmlType t) {
        return switch (t) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            default -> null;
        };
    }
}
