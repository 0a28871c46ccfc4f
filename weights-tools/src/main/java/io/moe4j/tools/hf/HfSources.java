package io.moe4j.tools.hf;

import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongUnaryOperator;

/** {@link RowSource}s of the tensors of a checkpoint, for each {@link HfLayout.Kind}. */
final class HfSources {
    private HfSources() {
    }

    /** Where GGUF tensor {@code link} comes from in {@code ckpt}; null for a missing optional tensor. */
    static RowSource of(Checkpoint ckpt, HfLayout.Link link) {
        long[] d = link.dims();
        return switch (link.kind()) {
            case DIRECT -> rows(ckpt, List.of(shaped(ckpt, link.hf(), reverse(d))), d, null);
            case PERMUTE -> {
                long rows = d[1];
                int heads = link.heads();
                if (rows % heads != 0 || (rows / heads) % 2 != 0) {
                    throw new ModelFormatException(ckpt.dir() + ": " + link.hf() + ": " + rows + " rows cannot be split into " + heads + " heads of even size");
                }
                yield rows(ckpt, List.of(shaped(ckpt, link.hf(), reverse(d))), d, r -> HfLayout.permutedSourceRow(r, rows, heads));
            }
            case STACK -> {
                List<SafetensorsFile.Entry> parts = new ArrayList<>();
                for (int e = 0; e < link.heads(); e++) parts.add(shaped(ckpt, link.hf().replace("{e}", Integer.toString(e)), new long[]{d[1], d[0]}));
                yield rows(ckpt, parts, d, null);
            }
            case OSS_GATE_UP -> {
                long in = d[0], ff = d[1], n = d[2];
                if (ckpt.get(link.hf() + "_blocks") != null) yield mxfp4(ckpt, link.hf(), n, ff, in, 2, link.part());
                SafetensorsFile.Entry t = shaped(ckpt, link.hf(), new long[]{n, in, 2 * ff});
                // ggml row (e, j), element c = HF [e][c][2j + part]
                yield strided(t, n * ff, (int) in, r -> (r / ff) * in * 2 * ff + 2 * (r % ff) + link.part(), 2 * ff);
            }
            case OSS_GATE_UP_BIAS -> {
                long ff = d[0], n = d[1];
                SafetensorsFile.Entry t = shaped(ckpt, link.hf(), new long[]{n, 2 * ff});
                yield strided(t, n, (int) ff, r -> r * 2 * ff + link.part(), 2);
            }
            case OSS_DOWN -> {
                long ff = d[0], out = d[1], n = d[2];
                if (ckpt.get(link.hf() + "_blocks") != null) yield mxfp4(ckpt, link.hf(), n, out, ff, 1, 0);
                SafetensorsFile.Entry t = shaped(ckpt, link.hf(), new long[]{n, ff, out});
                // ggml row (e, r), element c = HF [e][c][r]
                yield strided(t, n * out, (int) ff, r -> (r / out) * ff * out + r % out, out);
            }
            case KV_B -> {
                int heads = link.heads();
                SafetensorsFile.Entry t = ckpt.require(link.hf());
                long lora = link.part() == 0 ? d[1] : d[0], own = link.part() == 0 ? d[0] : d[1];
                long perHead = t.shape().length == 2 && t.shape()[0] % heads == 0 ? t.shape()[0] / heads : -1;
                if (perHead <= own) {
                    throw new ModelFormatException(ckpt.dir() + ": tensor '" + link.hf() + "' has shape " + Arrays.toString(t.shape())
                            + ", expected [" + heads + " heads x (qk_nope_head_dim + v_head_dim), " + lora + "] from config.json");
                }
                long nope = link.part() == 0 ? own : perHead - own;
                shaped(ckpt, link.hf(), new long[]{heads * perHead, lora});
                if (link.part() == 0) {
                    // ggml row (h, j), element c = HF [h * perHead + c][j]: the head's key rows transposed
                    yield strided(t, heads * lora, (int) nope, r -> (r / lora) * perHead * lora + r % lora, lora);
                }
                // ggml row (h, j) = HF row h * perHead + qk_nope + j
                yield strided(t, heads * own, (int) lora, r -> ((r / own) * perHead + nope + r % own) * lora, 1);
            }
        };
    }

    static long[] reverse(long[] d) {
        long[] r = new long[d.length];
        for (int i = 0; i < d.length; i++) r[i] = d[d.length - 1 - i];
        return r;
    }

    private static SafetensorsFile.Entry shaped(Checkpoint ckpt, String name, long[] shape) {
        SafetensorsFile.Entry e = ckpt.require(name);
        if (!Arrays.equals(e.shape(), shape)) {
            throw new ModelFormatException(ckpt.dir() + ": tensor '" + name + "' has shape " + Arrays.toString(e.shape())
                    + ", expected " + Arrays.toString(shape) + " from config.json");
        }
        return e;
    }

    private static GgmlType nativeOf(SafetensorsFile.Entry e, Checkpoint ckpt) {
        return switch (e.dtype()) {
            case F32, F16, BF16 -> e.dtype().ggml();
            case F64 -> null;
            default -> throw new ModelFormatException(ckpt.dir() + ": tensor '" + e.name() + "' has dtype " + e.dtype()
                    + ", expected F32, F16, BF16 (or F64)");
        };
    }

    /** Whole rows of one or more same-shaped parts, optionally with a row permutation inside each part. */
    private static RowSource rows(Checkpoint ckpt, List<SafetensorsFile.Entry> parts, long[] dims, LongUnaryOperator perm) {
        DType dt = parts.getFirst().dtype();
        for (SafetensorsFile.Entry p : parts) {
            if (p.dtype() != dt) throw new ModelFormatException(ckpt.dir() + ": experts stored in different dtypes (" + dt + ", " + p.dtype() + ")");
        }
        GgmlType nat = nativeOf(parts.getFirst(), ckpt);
        int cols = (int) dims[0];
        long total = 1;
        for (long x : dims) total *= x;
        long rows = total / cols;
        long perPart = rows / parts.size();
        long rowBytes = (long) cols * dt.bytes;
        return new RowSource() {
            public GgmlType nativeType() {
                return nat;
            }

            public long rows() {
                return rows;
            }

            public int cols() {
                return cols;
            }

            private long offset(long r) {
                long pr = r % perPart;
                return (perm == null ? pr : perm.applyAsLong(pr)) * rowBytes;
            }

            public void read(long r, float[] dst, int off) {
                RowSource.decode(dt, parts.get((int) (r / perPart)).data(), offset(r), 1, dst, off, cols);
            }

            public void raw(long r, MemorySegment dst, long off) {
                MemorySegment.copy(parts.get((int) (r / perPart)).data(), offset(r), dst, off, rowBytes);
            }

            public List<MemorySegment> slices() {
                if (perm != null || nat == null) return null;
                List<MemorySegment> s = new ArrayList<>();
                for (SafetensorsFile.Entry p : parts) s.add(p.data());
                return s;
            }
        };
    }

    /** Rows whose elements are {@code stride} apart in the source, row r starting at element {@code start(r)}. */
    private static RowSource strided(SafetensorsFile.Entry t, long rows, int cols, LongUnaryOperator start, long stride) {
        DType dt = t.dtype();
        GgmlType nat = dt.ggml();
        if (nat == null && dt != DType.F64) throw new ModelFormatException("tensor '" + t.name() + "' has dtype " + dt + ", expected F32, F16 or BF16");
        int eb = dt.bytes;
        return new RowSource() {
            public GgmlType nativeType() {
                return nat;
            }

            public long rows() {
                return rows;
            }

            public int cols() {
                return cols;
            }

            public void read(long r, float[] dst, int off) {
                RowSource.decode(dt, t.data(), start.applyAsLong(r) * eb, stride, dst, off, cols);
            }

            public void raw(long r, MemorySegment dst, long off) {
                long s = start.applyAsLong(r) * eb;
                for (int c = 0; c < cols; c++) MemorySegment.copy(t.data(), s + c * stride * eb, dst, off + (long) c * eb, eb);
            }
        };
    }

    /**
     * gpt-oss MXFP4 experts: {@code name_blocks} U8 [experts, hfRows, nb, 16] and {@code name_scales} U8
     * [experts, hfRows, nb]; ggml row (e, j) is HF row {@code every * j + part} of expert e, repacked to ggml blocks.
     */
    private static RowSource mxfp4(Checkpoint ckpt, String name, long experts, long rowsPerExpert, long cols, int every, int part) {
        if (cols % 32 != 0) throw new ModelFormatException(ckpt.dir() + ": " + name + ": MXFP4 rows of " + cols + " are not whole blocks");
        long nb = cols / 32, hfRows = rowsPerExpert * every;
        SafetensorsFile.Entry blocks = ckpt.require(name + "_blocks"), scales = ckpt.require(name + "_scales");
        long[] bs = {experts, hfRows, nb, 16}, ss = {experts, hfRows, nb};
        if (blocks.dtype() != DType.U8 || !Arrays.equals(blocks.shape(), bs)) {
            throw new ModelFormatException(ckpt.dir() + ": " + blocks + ", expected U8 " + Arrays.toString(bs));
        }
        if (scales.dtype() != DType.U8 || !Arrays.equals(scales.shape(), ss)) {
            throw new ModelFormatException(ckpt.dir() + ": " + scales + ", expected U8 " + Arrays.toString(ss));
        }
        long rows = experts * rowsPerExpert;
        return new RowSource() {
            public GgmlType nativeType() {
                return GgmlType.MXFP4;
            }

            public long rows() {
                return rows;
            }

            public int cols() {
                return (int) cols;
            }

            public void raw(long r, MemorySegment dst, long off) {
                long e = r / rowsPerExpert, hr = e * hfRows + every * (r % rowsPerExpert) + part;
                for (long b = 0; b < nb; b++) {
                    dst.set(ValueLayout.JAVA_BYTE, off + b * 17, scales.data().get(ValueLayout.JAVA_BYTE, hr * nb + b));
                    Mxfp4Layout.hfToGgml(blocks.data(), (hr * nb + b) * 16, dst, off + b * 17 + 1);
                }
            }

            public void read(long r, float[] dst, int off) {
                MemorySegment tmp = MemorySegment.ofArray(new byte[(int) (nb * 17)]);
                raw(r, tmp, 0);
                Codec.decode(GgmlType.MXFP4, tmp, 0, dst, off, (int) cols);
            }
        };
    }
}
