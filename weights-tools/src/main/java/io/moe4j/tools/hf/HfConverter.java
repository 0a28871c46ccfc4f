package io.moe4j.tools.hf;

import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.ModelFormatException;
import io.moe4j.kernels.GgmlType;
import io.moe4j.model.FileLayout;
import io.moe4j.tools.ModelWriter;
import io.moe4j.tools.Progress;
import io.moe4j.tools.TensorPlan;
import io.moe4j.tools.quant.FileType;
import io.moe4j.tools.quant.Quantizer;
import io.moe4j.tools.quant.TypeRules;
import io.moe4j.tools.synth.ModelShape;
import io.moe4j.tools.synth.Synth;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code moe4j convert}: a Hugging Face checkpoint folder to GGUF with the tensor names, Q/K permutation, expert
 * stacking, metadata and tokenizer llama.cpp's convert_hf_to_gguf.py writes. Tensors are streamed from the mapped
 * safetensors files; those that keep their dtype are copied byte for byte.
 *
 * <p>Types: without {@code --type} every matrix keeps its checkpoint dtype (F32, F16, BF16; gpt-oss MXFP4 experts
 * stay MXFP4) and 1-D tensors, norms and routers are F32, as convert does. With {@code --type} the matrices are
 * converted as {@code moe4j quantize} would (llama-quantize's per-tensor mix); gpt-oss MXFP4 experts stay MXFP4
 * unless {@code --experts-type} says otherwise.
 */
public final class HfConverter {

    public record Settings(FileType type, GgmlType expertsType, boolean pure, int threads, boolean quiet) {
    }

    private HfConverter() {
    }

    public static ModelWriter.Result convert(Path dir, Path out, Settings s) {
        HfConfig.Parsed cfg = HfConfig.read(dir);
        GgmlBlocks closeLater = null;
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            ModelShape shape = cfg.shape();
            if (!shape.tied() && ckpt.get("lm_head.weight") == null) {
                ModelShape.Builder b = shape.toBuilder();
                b.tied = true;
                shape = b.build();
            }
            String arch = shape.arch();
            FileLayout files = shape.files();
            boolean qkvBias = switch (files.qkvBias()) {
                case ALWAYS -> true;
                case FROM_CONFIG -> cfg.extras().attentionBias();
                case NEVER -> false;
            };
            String moeLayer = "model.layers." + shape.leadingDense() + "." + files.hf().experts().module;
            HfLayout.Options opt = new HfLayout.Options(qkvBias, files.has(FileLayout.Trait.GPT_OSS_BIASES),
                    ckpt.get("model.layers.0.mlp.shared_expert_gate.weight") != null,
                    ckpt.get(moeLayer + files.hf().experts().router + ".e_score_correction_bias") != null);
            List<HfLayout.Link> links = HfLayout.links(shape, opt);

            List<RowSource> sources = new ArrayList<>();
            Set<String> used = new HashSet<>();
            for (HfLayout.Link l : links) {
                sources.add(HfSources.of(ckpt, l));
                switch (l.kind()) {
                    case STACK -> {
                        for (int e = 0; e < l.heads(); e++) used.add(l.hf().replace("{e}", Integer.toString(e)));
                    }
                    case OSS_GATE_UP, OSS_DOWN -> {
                        used.add(l.hf());
                        used.add(l.hf() + "_blocks");
                        used.add(l.hf() + "_scales");
                    }
                    default -> used.add(l.hf());
                }
            }
            if (shape.tied()) used.add("lm_head.weight");
            Set<String> unused = new TreeSet<>();
            for (String n : ckpt.tensors().keySet()) {
                // DeepSeek-V3's multi-token prediction layers follow the last block; llama.cpp's converter skips them
                if (!used.contains(n) && !n.endsWith("rotary_emb.inv_freq") && !isPredictionLayer(n, shape, cfg.json())) unused.add(n);
            }
            if (!unused.isEmpty() && unused.stream().anyMatch(n -> n.endsWith("_scale_inv"))) {
                throw new ModelFormatException(dir + ": the checkpoint holds FP8 blocks with scales (e.g. "
                        + unused.stream().filter(n -> n.endsWith("_scale_inv")).findFirst().orElseThrow()
                        + "), which convert does not read: convert a BF16 copy of the checkpoint");
            }
            if (!unused.isEmpty()) {
                throw new ModelFormatException(dir + ": " + unused.size() + " checkpoint tensors have no place in a " + arch
                        + " GGUF (an unsupported variant of the architecture?), e.g. " + unused.iterator().next());
            }

            List<GgmlType> types = chooseTypes(links, sources, s, shape);
            List<TensorPlan> plans = new ArrayList<>();
            if (cfg.extras().llama3() != null) {
                float[] factors = HfConfig.llama3RopeFactors(cfg.extras().llama3(), shape.ropeBase(), shape.headDim());
                plans.add(new TensorPlan("rope_freqs.weight", GgmlType.F32, new long[]{factors.length},
                        new TensorPlan.Bytes(MemorySegment.ofArray(littleEndian(factors)))));
            }
            GgmlBlocks blocks = GgmlBlocks.open(dir);
            closeLater = blocks;
            for (int i = 0; i < links.size(); i++) {
                HfLayout.Link l = links.get(i);
                GgmlType t = types.get(i);
                TensorPlan plan = new TensorPlan(l.gguf(), t, l.dims(), sources.get(i).plan(t));
                MemorySegment recorded = blocks == null || !t.isQuantized() || t == sources.get(i).nativeType() ? null
                        : blocks.blocks(l.gguf(), t, plan.byteSize());
                if (recorded != null) plan = new TensorPlan(l.gguf(), t, l.dims(), GgmlBlocks.verified(sources.get(i), t, recorded));
                plans.add(plan);
            }

            Map<String, GgufValue> md = new LinkedHashMap<>();
            md.put("general.architecture", GgufValue.of(arch));
            md.put("general.type", GgufValue.of("model"));
            md.put("general.name", GgufValue.of(shape.name()));
            Synth.putHparams(md, shape);
            HfConfig.Extras x = cfg.extras();
            String a = arch + ".";
            if (x.linearFactor() > 0) {
                md.put(a + "rope.scaling.type", GgufValue.of("linear"));
                md.put(a + "rope.scaling.factor", GgufValue.ofF32((float) x.linearFactor()));
            }
            if (shape.yarnFactor() > 0 && x.yarnBetaFast() != null) md.put(a + "rope.scaling.yarn_beta_fast", GgufValue.ofF32(x.yarnBetaFast().floatValue()));
            if (shape.yarnFactor() > 0 && x.yarnBetaSlow() != null) md.put(a + "rope.scaling.yarn_beta_slow", GgufValue.ofF32(x.yarnBetaSlow().floatValue()));
            md.put("general.file_type", Synth.u32(fileType(s, plans)));
            md.put("general.quantization_version", Synth.u32(Quantizer.QUANTIZATION_VERSION));
            TokenizerFiles.toGguf(dir, cfg.hfClass().preTokenizer(), cfg.json(), shape.vocab(), md);

            Progress p = Progress.start("convert", 0, s.quiet());
            return ModelWriter.write(out, md, plans, p, s.threads(), "wrote");
        } finally {
            if (closeLater != null) closeLater.close();
        }
    }

    /** Whether {@code tensor} belongs to a layer after the last block, which num_nextn_predict_layers says exist. */
    private static boolean isPredictionLayer(String tensor, ModelShape shape, com.fasterxml.jackson.databind.JsonNode config) {
        int extra = config.path("num_nextn_predict_layers").asInt(0);
        if (extra <= 0 || !tensor.startsWith("model.layers.")) return false;
        int dot = tensor.indexOf('.', "model.layers.".length());
        if (dot < 0) return false;
        try {
            int layer = Integer.parseInt(tensor.substring("model.layers.".length(), dot));
            return layer >= shape.layers() && layer < shape.layers() + extra;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static byte[] littleEndian(float[] f) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * f.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float x : f) b.putFloat(x);
        return b.array();
    }

    private static List<GgmlType> chooseTypes(List<HfLayout.Link> links, List<RowSource> sources, Settings s, ModelShape shape) {
        TypeRules.Options o = new TypeRules.Options(s.type(), s.expertsType(), null, null, s.pure(), false);
        TypeRules probe = new TypeRules(o, shape.experts(), shape.layers());
        List<TypeRules.Tensor> infos = new ArrayList<>();
        for (int i = 0; i < links.size(); i++) {
            HfLayout.Link l = links.get(i);
            TypeRules.Tensor t0 = new TypeRules.Tensor(l.gguf(), l.dims(), GgmlType.F32);
            GgmlType nat = sources.get(i).nativeType();
            GgmlType base = probe.allowsQuantization(t0) && nat != null ? nat : GgmlType.F32;
            infos.add(new TypeRules.Tensor(l.gguf(), l.dims(), base));
        }
        List<GgmlType> types = new ArrayList<>(infos.stream().map(TypeRules.Tensor::type).toList());
        if (s.type() == null && s.expertsType() == null) return types;
        // the mix's layer counters advance in llama-quantize's tensor order
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < infos.size(); i++) order.add(i);
        order.sort(Comparator.comparing(i -> infos.get(i).name(), Quantizer::compareNames));
        List<TypeRules.Tensor> sorted = order.stream().map(infos::get).toList();
        List<GgmlType> planned = new TypeRules(o, shape.experts(), shape.layers()).plan(sorted);
        for (int k = 0; k < order.size(); k++) {
            int i = order.get(k);
            GgmlType t = planned.get(k);
            if (infos.get(i).type() == GgmlType.MXFP4 && s.expertsType() == null) t = GgmlType.MXFP4;
            types.set(i, t);
        }
        return types;
    }

    private static int fileType(Settings s, List<TensorPlan> plans) {
        if (s.type() != null) {
            if (s.expertsType() == GgmlType.MXFP4 && s.type() == FileType.Q8_0) return FileType.MXFP4_MOE.id;
            return s.type().id;
        }
        Set<GgmlType> t = new HashSet<>();
        for (TensorPlan p : plans) t.add(p.type());
        if (t.contains(GgmlType.MXFP4)) return FileType.MXFP4_MOE.id;
        if (s.expertsType() != null && FileType.of(s.expertsType()) != null) return FileType.of(s.expertsType()).id;
        if (t.contains(GgmlType.BF16)) return FileType.BF16.id;
        if (t.contains(GgmlType.F16)) return FileType.F16.id;
        return FileType.F32.id;
    }
}
