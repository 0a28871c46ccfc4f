package io.moe4j.tools.hf;

import io.moe4j.ByteSize;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.tools.Codec;
import io.moe4j.tools.ModelWriter;
import io.moe4j.tools.Progress;
import io.moe4j.tools.quant.Quantizer;
import io.moe4j.tools.synth.ModelShape;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code moe4j export}: a GGUF model as a Hugging Face folder (config.json, generation_config.json, safetensors
 * shards with an index when there is more than one, tokenizer files), the inverse of {@link HfConverter}. F32, F16
 * and BF16 tensors keep their type; quantized ones are dequantized to F32 (or the requested dtype), except the
 * MXFP4 experts of gpt-oss, which keep the checkpoint's own MXFP4 blocks and scales.
 */
public final class HfExporter {

    /**
     * @param dtype       null: keep F32/F16/BF16, dequantize the rest to F32
     * @param ggmlBlocks  also keep the quantized blocks of dequantized tensors in {@link GgmlBlocks#FILE}, so that
     *                    convert restores them bit for bit
     */
    public record Settings(DType dtype, long maxShardBytes, boolean ggmlBlocks, boolean quiet) {
        public Settings(DType dtype, long maxShardBytes, boolean quiet) {
            this(dtype, maxShardBytes, true, quiet);
        }
    }

    private HfExporter() {
    }

    public static Path export(Path in, Path dir, Settings s) {
        if (!Files.isRegularFile(in)) throw new Moe4jException("input model not found: " + in);
        try (GgufFile f = GgufFile.open(in)) {
            return export(f, dir, s);
        }
    }

    public static Path export(GgufFile f, Path dir, Settings s) {
        ModelShape shape = HfConfig.shapeOf(f);
        HfConfig.Extras extras = HfConfig.extrasOf(f.metadata());
        String moeBlock = "blk." + shape.leadingDense() + ".";
        HfLayout.Options opt = new HfLayout.Options(f.tensor("blk.0.attn_q.bias") != null, f.tensor("blk.0.attn_output.bias") != null,
                f.tensor(moeBlock + "ffn_gate_inp_shexp.weight") != null, f.tensor(moeBlock + "exp_probs_b.bias") != null);
        List<HfLayout.Link> links = HfLayout.links(shape, opt);
        Map<String, GgufTensor> byName = f.tensors();
        Set<String> used = new HashSet<>();
        for (HfLayout.Link l : links) {
            GgufTensor t = byName.get(l.gguf());
            if (t == null) throw new ModelFormatException(f.path() + ": tensor '" + l.gguf() + "' is missing (needed by a " + shape.arch() + " model)");
            if (!Arrays.equals(Quantizer.trimDims(t.dims()), Quantizer.trimDims(l.dims()))) {
                throw new ModelFormatException(f.path() + ": tensor '" + l.gguf() + "' has shape " + t.shape() + ", expected "
                        + Arrays.toString(l.dims()) + " from the model's hyper-parameters");
            }
            if (!Codec.canDecode(t.type())) throw new ModelFormatException(f.path() + ": tensor '" + l.gguf() + "' has type " + t.type() + ", which cannot be read");
            used.add(l.gguf());
        }
        Set<String> extra = new TreeSet<>(byName.keySet());
        extra.removeAll(used);
        if (extra.contains("rope_freqs.weight")) {
            throw new ModelFormatException(f.path() + ": rope_freqs.weight (Llama 3 RoPE scaling) cannot be expressed in config.json"
                    + " from the GGUF file alone; export is not supported for this model");
        }
        if (!extra.isEmpty()) {
            throw new ModelFormatException(f.path() + ": " + extra.size() + " tensors have no Hugging Face counterpart, e.g. " + extra.iterator().next());
        }

        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        List<GgufTensor> sidecar = new ArrayList<>();
        boolean mxfp4 = false;
        Set<DType> dtypes = new HashSet<>();
        for (HfLayout.Link l : links) {
            GgufTensor t = byName.get(l.gguf());
            DType out = s.dtype() != null ? s.dtype() : DType.of(t.type()) != null ? DType.of(t.type()) : DType.F32;
            // gpt-oss MXFP4 experts are written as the checkpoint's own blocks (gate and up only together)
            boolean nativeMxfp4 = s.dtype() == null && t.type() == GgmlType.MXFP4 && switch (l.kind()) {
                case OSS_DOWN -> true;
                case OSS_GATE_UP -> byName.get(l.part() == 0 ? l.gguf().replace("ffn_gate_exps", "ffn_up_exps")
                        : l.gguf().replace("ffn_up_exps", "ffn_gate_exps")).type() == GgmlType.MXFP4;
                default -> false;
            };
            if (t.type().isQuantized() && !nativeMxfp4) sidecar.add(t);
            switch (l.kind()) {
                case DIRECT -> tensors.add(new SafetensorsWriter.Tensor(l.hf(), out, HfSources.reverse(l.dims()), rows(t, out, null)));
                case PERMUTE -> {
                    long n = t.dim(1);
                    int heads = l.heads();
                    tensors.add(new SafetensorsWriter.Tensor(l.hf(), out, HfSources.reverse(l.dims()),
                            rows(t, out, r -> HfLayout.permutedTargetRow(r, n, heads))));
                }
                case STACK -> {
                    long per = l.dims()[1];
                    for (int e = 0; e < l.heads(); e++) {
                        long first = e * per;
                        tensors.add(new SafetensorsWriter.Tensor(l.hf().replace("{e}", Integer.toString(e)), out,
                                new long[]{l.dims()[1], l.dims()[0]}, rows(t, out, r -> first + r, per)));
                    }
                }
                case OSS_GATE_UP -> {
                    if (l.part() == 1) continue;
                    GgufTensor up = byName.get(l.gguf().replace("ffn_gate_exps", "ffn_up_exps"));
                    long in = l.dims()[0], ff = l.dims()[1], n = l.dims()[2];
                    if (s.dtype() == null && t.type() == GgmlType.MXFP4 && up.type() == GgmlType.MXFP4) {
                        mxfp4 = true;
                        tensors.add(new SafetensorsWriter.Tensor(l.hf() + "_blocks", DType.U8, new long[]{n, 2 * ff, in / 32, 16},
                                mxfp4Part(new GgufTensor[]{t, up}, ff, in, true)));
                        tensors.add(new SafetensorsWriter.Tensor(l.hf() + "_scales", DType.U8, new long[]{n, 2 * ff, in / 32},
                                mxfp4Part(new GgufTensor[]{t, up}, ff, in, false)));
                    } else {
                        DType d = s.dtype() != null ? s.dtype() : DType.of(t.type()) != null ? DType.of(t.type()) : DType.F32;
                        out = d;
                        tensors.add(new SafetensorsWriter.Tensor(l.hf(), d, new long[]{n, in, 2 * ff}, transposed(new GgufTensor[]{t, up}, ff, in, d)));
                    }
                }
                case OSS_GATE_UP_BIAS -> {
                    if (l.part() == 1) continue;
                    GgufTensor up = byName.get(l.gguf().replace("ffn_gate_exps", "ffn_up_exps"));
                    long ff = l.dims()[0], n = l.dims()[1];
                    tensors.add(new SafetensorsWriter.Tensor(l.hf(), out, new long[]{n, 2 * ff}, transposed(new GgufTensor[]{t, up}, 1, ff, out)));
                }
                case KV_B -> {
                    if (l.part() == 1) continue;
                    GgufTensor v = byName.get(l.gguf().replace("attn_k_b", "attn_v_b"));
                    // one dtype for the joined tensor: the parts' own when they share it, else F32
                    out = s.dtype() != null ? s.dtype() : t.type() == v.type() && DType.of(t.type()) != null ? DType.of(t.type()) : DType.F32;
                    tensors.add(new SafetensorsWriter.Tensor(l.hf(), out, HfLayout.kvBShape(shape), kvB(t, v, l.heads(), out)));
                }
                case OSS_DOWN -> {
                    long ff = l.dims()[0], outRows = l.dims()[1], n = l.dims()[2];
                    if (s.dtype() == null && t.type() == GgmlType.MXFP4) {
                        mxfp4 = true;
                        tensors.add(new SafetensorsWriter.Tensor(l.hf() + "_blocks", DType.U8, new long[]{n, outRows, ff / 32, 16},
                                mxfp4Part(new GgufTensor[]{t}, outRows, ff, true)));
                        tensors.add(new SafetensorsWriter.Tensor(l.hf() + "_scales", DType.U8, new long[]{n, outRows, ff / 32},
                                mxfp4Part(new GgufTensor[]{t}, outRows, ff, false)));
                    } else {
                        tensors.add(new SafetensorsWriter.Tensor(l.hf(), out, new long[]{n, ff, outRows}, transposed(new GgufTensor[]{t}, outRows, ff, out)));
                    }
                }
            }
            if (l.kind() != HfLayout.Kind.OSS_DOWN || t.type() != GgmlType.MXFP4) dtypes.add(out);
        }
        return write(f, dir, s, shape, extras, opt, tensors, s.ggmlBlocks() ? sidecar : List.of(), mxfp4, dtypes);
    }

    private static Path write(GgufFile f, Path dir, Settings s, ModelShape shape, HfConfig.Extras extras, HfLayout.Options opt,
                              List<SafetensorsWriter.Tensor> tensors, List<GgufTensor> sidecar, boolean mxfp4, Set<DType> dtypes) {
        Path parent = dir.toAbsolutePath().normalize().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new Moe4jException("cannot write " + dir + ": folder " + parent + " does not exist");
        List<Path> written = new ArrayList<>();
        boolean created = false;
        boolean ok = false;
        long total = SafetensorsWriter.dataBytes(tensors);
        Progress p = Progress.start("export", total, s.quiet());
        try {
            if (!Files.isDirectory(dir)) {
                Files.createDirectory(dir);
                created = true;
            }
            long free = Files.getFileStore(dir).getUsableSpace();
            if (free > 0 && free < total) {
                throw new Moe4jException("not enough disk space for " + dir + ": it needs " + ByteSize.format(total) + ", only " + ByteSize.format(free) + " are free");
            }
            List<List<SafetensorsWriter.Tensor>> shards = new ArrayList<>();
            List<SafetensorsWriter.Tensor> cur = new ArrayList<>();
            long curBytes = 0;
            for (SafetensorsWriter.Tensor t : tensors) {
                if (!cur.isEmpty() && curBytes + t.byteSize() > s.maxShardBytes()) {
                    shards.add(cur);
                    cur = new ArrayList<>();
                    curBytes = 0;
                }
                cur.add(counting(t, p));
                curBytes += t.byteSize();
            }
            shards.add(cur);
            Map<String, String> meta = Map.of("format", "pt");
            ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            if (shards.size() == 1) {
                written.add(SafetensorsWriter.write(dir.resolve("model.safetensors"), meta, shards.getFirst()));
            } else {
                ObjectNode index = om.createObjectNode();
                index.putObject("metadata").put("total_size", total);
                ObjectNode map = index.putObject("weight_map");
                for (int i = 0; i < shards.size(); i++) {
                    String name = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", i + 1, shards.size());
                    written.add(SafetensorsWriter.write(dir.resolve(name), meta, shards.get(i)));
                    for (SafetensorsWriter.Tensor t : shards.get(i)) map.put(t.name(), name);
                }
                Path ip = dir.resolve("model.safetensors.index.json");
                om.writeValue(ip.toFile(), index);
                written.add(ip);
            }
            if (!sidecar.isEmpty()) {
                Map<String, String> md = GgmlBlocks.newMetadata();
                List<SafetensorsWriter.Tensor> blocks = GgmlBlocks.entries(sidecar, md);
                written.add(SafetensorsWriter.write(dir.resolve(GgmlBlocks.FILE), md, blocks));
            }
            for (String n : List.of("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) written.add(dir.resolve(n));
            int[] special = TokenizerFiles.fromGguf(f.metadata(), dir, shape.ctx());
            String torch = dtypes.contains(DType.BF16) ? "bfloat16" : dtypes.contains(DType.F16) ? "float16" : "float32";
            ObjectNode config = HfConfig.write(shape, extras, torch, special[0], special[1], opt.sharedExpertGate());
            if (mxfp4) {
                ObjectNode q = config.putObject("quantization_config");
                q.put("quant_method", "mxfp4");
                ArrayNode keep = q.putArray("modules_to_not_convert");
                keep.add("model.layers.*.self_attn").add("model.layers.*.mlp.router").add("model.embed_tokens").add("lm_head");
            }
            written.add(dir.resolve("config.json"));
            om.writeValue(dir.resolve("config.json").toFile(), config);
            ObjectNode gen = om.createObjectNode();
            if (special[0] >= 0) gen.put("bos_token_id", special[0]);
            if (special[1] >= 0) gen.put("eos_token_id", special[1]);
            written.add(dir.resolve("generation_config.json"));
            om.writeValue(dir.resolve("generation_config.json").toFile(), gen);
            ok = true;
            p.finish(p.summary("exported " + dir, tensors.size(), total));
            return dir;
        } catch (IOException e) {
            throw new Moe4jException("writing " + dir + " failed: " + e.getMessage(), e);
        } finally {
            if (!ok) {
                for (Path w : written) {
                    try {
                        Files.deleteIfExists(w);
                    } catch (IOException ignored) {
                        // best effort
                    }
                }
                if (created) {
                    try {
                        Files.deleteIfExists(dir);
                    } catch (IOException ignored) {
                        // not empty: leave it
                    }
                }
            }
        }
    }

    private static SafetensorsWriter.Tensor counting(SafetensorsWriter.Tensor t, Progress p) {
        return new SafetensorsWriter.Tensor(t.name(), t.dtype(), t.shape(), out -> {
            p.item(t.name());
            t.producer().produce(b -> {
                out.write(b);
                p.advance(b.byteSize());
            });
        });
    }

    interface RowMap {
        long source(long hfRow);
    }

    private static SafetensorsWriter.Producer rows(GgufTensor t, DType out, RowMap map) {
        return rows(t, out, map, t.elementCount() / t.dims()[0]);
    }

    /** {@code count} rows of {@code t} (row i is the tensor's row map(i)) written as {@code out}. */
    private static SafetensorsWriter.Producer rows(GgufTensor t, DType out, RowMap map, long count) {
        int cols = (int) t.dims()[0];
        long rowBytes = t.type().bytesFor(cols);
        return sink -> {
            if (out.ggml() == t.type() && (map == null || contiguous(map, count))) {
                long first = map == null ? 0 : map.source(0);
                sink.write(t.data().asSlice(first * rowBytes, count * rowBytes));
                return;
            }
            int per = ModelWriter.rowsPerChunk(cols);
            float[] f = new float[per * cols];
            byte[] b = new byte[per * cols * out.bytes];
            for (long r0 = 0; r0 < count; r0 += per) {
                int n = (int) Math.min(per, count - r0);
                for (int i = 0; i < n; i++) {
                    long src = map == null ? r0 + i : map.source(r0 + i);
                    Codec.decode(t.type(), t.data(), src * rowBytes, f, i * cols, cols);
                }
                Codec.encode(out.ggml(), f, n * cols, MemorySegment.ofArray(b), 0);
                sink.write(MemorySegment.ofArray(b).asSlice(0, (long) n * cols * out.bytes));
            }
        };
    }

    private static boolean contiguous(RowMap map, long count) {
        long first = map.source(0);
        for (long i = 1; i < count; i++) if (map.source(i) != first + i) return false;
        return true;
    }

    /**
     * gpt-oss experts as HF's transposed matrices [experts][cols][parts * rowsPerExpert]: element [e][c][parts*j + p]
     * is element c of row (e * rowsPerExpert + j) of part p (gate and up interleaved, or one part for down_proj and
     * the biases with cols = 1 ... see callers).
     */
    private static SafetensorsWriter.Producer transposed(GgufTensor[] parts, long rowsPerExpert, long cols, DType out) {
        int np = parts.length;
        return sink -> {
            GgufTensor t0 = parts[0];
            boolean bias = rowsPerExpert == 1; // biases: ggml [cols, experts] rows are experts, HF [experts][np * cols]
            long experts = t0.elementCount() / (bias ? cols : rowsPerExpert * cols);
            int width = (int) (bias ? cols : rowsPerExpert) * np;
            int height = (int) (bias ? 1 : cols);
            float[] row = new float[(int) cols];
            float[] buf = new float[width * height];
            byte[] b = new byte[buf.length * out.bytes];
            for (long e = 0; e < experts; e++) {
                for (int p = 0; p < np; p++) {
                    GgufTensor t = parts[p];
                    long rowBytes = t.type().bytesFor(cols);
                    if (bias) {
                        Codec.decode(t.type(), t.data(), e * rowBytes, row, 0, (int) cols);
                        for (int j = 0; j < cols; j++) buf[j * np + p] = row[j];
                        continue;
                    }
                    for (long j = 0; j < rowsPerExpert; j++) {
                        Codec.decode(t.type(), t.data(), (e * rowsPerExpert + j) * rowBytes, row, 0, (int) cols);
                        for (int c = 0; c < cols; c++) buf[(int) (c * width + j * np + p)] = row[c];
                    }
                }
                Codec.encode(out.ggml(), buf, buf.length, MemorySegment.ofArray(b), 0);
                sink.write(MemorySegment.ofArray(b));
            }
        };
    }

    /**
     * DeepSeek's kv_b_proj from attn_k_b (per head [qk_nope, kv_lora] ggml, the key rows transposed) and attn_v_b (per
     * head the value rows): head by head, qk_nope key rows then v_head value rows of kv_lora values each.
     */
    private static SafetensorsWriter.Producer kvB(GgufTensor k, GgufTensor v, int heads, DType out) {
        int nope = (int) k.dims()[0], lora = (int) k.dims()[1], vHead = (int) v.dims()[1];
        return sink -> {
            long kRow = k.type().bytesFor(nope), vRow = v.type().bytesFor(lora);
            float[] kh = new float[lora * nope], buf = new float[(nope + vHead) * lora];
            byte[] b = new byte[buf.length * out.bytes];
            for (int h = 0; h < heads; h++) {
                for (int j = 0; j < lora; j++) Codec.decode(k.type(), k.data(), ((long) h * lora + j) * kRow, kh, j * nope, nope);
                for (int c = 0; c < nope; c++) for (int j = 0; j < lora; j++) buf[c * lora + j] = kh[j * nope + c];
                for (int j = 0; j < vHead; j++) Codec.decode(v.type(), v.data(), ((long) h * vHead + j) * vRow, buf, (nope + j) * lora, lora);
                Codec.encode(out.ggml(), buf, buf.length, MemorySegment.ofArray(b), 0);
                sink.write(MemorySegment.ofArray(b));
            }
        };
    }

    /** gpt-oss MXFP4 experts as HF blocks (16 bytes per block) or scales (1 byte per block), parts interleaved by row. */
    private static SafetensorsWriter.Producer mxfp4Part(GgufTensor[] parts, long rowsPerExpert, long cols, boolean blocks) {
        int np = parts.length;
        long nb = cols / 32, rowBytes = nb * 17;
        return sink -> {
            long experts = parts[0].elementCount() / (rowsPerExpert * cols);
            byte[] out = new byte[(int) (nb * (blocks ? 16 : 1))];
            MemorySegment o = MemorySegment.ofArray(out);
            for (long e = 0; e < experts; e++) {
                for (long j = 0; j < rowsPerExpert; j++) {
                    for (int p = 0; p < np; p++) {
                        MemorySegment src = parts[p].data();
                        long base = (e * rowsPerExpert + j) * rowBytes;
                        for (long k = 0; k < nb; k++) {
                            if (blocks) Mxfp4Layout.ggmlToHf(src, base + k * 17 + 1, o, k * 16);
                            else o.set(ValueLayout.JAVA_BYTE, k, src.get(ValueLayout.JAVA_BYTE, base + k * 17));
                        }
                        sink.write(o);
                    }
                }
            }
        };
    }
}
