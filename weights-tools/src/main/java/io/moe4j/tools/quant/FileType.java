package io.moe4j.tools.quant;

import io.moe4j.Moe4jException;
import io.moe4j.kernels.GgmlType;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The quantization mixes moe4j can write, with llama.cpp's {@code llama_ftype} ids (stored as
 * {@code general.file_type}) and the default tensor type of each. {@code Q4_K} is llama-quantize's alias of Q4_K_M
 * and {@code MXFP4} stands for MXFP4_MOE (MXFP4 experts, Q8_0 elsewhere), the only MXFP4 mix llama.cpp has.
 */
public enum FileType {
    F32(0, GgmlType.F32),
    F16(1, GgmlType.F16),
    Q4_0(2, GgmlType.Q4_0),
    Q8_0(7, GgmlType.Q8_0),
    Q4_K_M(15, GgmlType.Q4_K),
    Q6_K(18, GgmlType.Q6_K),
    BF16(32, GgmlType.BF16),
    MXFP4_MOE(38, GgmlType.MXFP4);

    public final int id;
    public final GgmlType defaultType;

    FileType(int id, GgmlType defaultType) {
        this.id = id;
        this.defaultType = defaultType;
    }

    /** Parses a --type value (case-insensitive): the names above plus the aliases Q4_K and MXFP4. */
    public static FileType parse(String s) {
        String u = s.trim().toUpperCase(Locale.ROOT);
        return switch (u) {
            case "Q4_K" -> Q4_K_M;
            case "MXFP4" -> MXFP4_MOE;
            default -> {
                for (FileType t : values()) if (t.name().equals(u)) yield t;
                throw new Moe4jException("unsupported type '" + s + "' (supported: Q8_0, Q4_0, Q4_K (= Q4_K_M), Q6_K, MXFP4 (= MXFP4_MOE), F16, BF16, F32)");
            }
        };
    }

    /** The file type whose default tensor type is {@code t}, or null. */
    public static FileType of(GgmlType t) {
        for (FileType f : values()) if (f.defaultType == t) return f;
        return null;
    }

    /** Parses a ggml tensor type name for --experts-type / --output-type (e.g. MXFP4, Q8_0, F16). */
    public static GgmlType parseTensorType(String s) {
        String u = s.trim().toUpperCase(Locale.ROOT);
        if (u.equals("Q4_K_M")) u = "Q4_K";
        for (FileType f : values()) {
            if (f.defaultType.name().equals(u)) return f.defaultType;
        }
        throw new Moe4jException("unsupported tensor type '" + s + "' (supported: "
                + Arrays.stream(values()).map(f -> f.defaultType.name()).collect(Collectors.joining(", ")) + ")");
    }
}
