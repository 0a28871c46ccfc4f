package io.moe4j.model;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The dense {@code qwen3} architecture has no golden file of its own. Built from the golden qwen3moe model, a
 * dense qwen3 whose FFN is expert 0 must give exactly the logits of a qwen3moe with that single expert.
 */
class DenseQwen3Test {

    @Test
    void denseQwen3EqualsASingleExpertQwen3Moe(@TempDir Path tmp) {
        Path src = SharedData.golden().resolve("models/qwen3moe-q8_0.gguf");
        Path dense = tmp.resolve("dense.gguf"), single = tmp.resolve("single.gguf");
        try (GgufFile f = GgufFile.open(src)) {
            write(f, dense, true);
            write(f, single, false);
        }
        int[] tokens = GoldenCase.byId("qwen3moe-q8_0").promptTokens();
        try (GgufFile d = GgufFile.open(dense); GgufFile s = GgufFile.open(single)) {
            Transformer td = Transformer.of(d), ts = Transformer.of(s);
            assertEquals("qwen3", td.config().arch().name());
            assertEquals(false, td.config().isMoe());
            float[] ld = td.forward(tokens, tokens.length, new KvCache(td.config(), 64, KvType.F32), true, null);
            float[] ls = ts.forward(tokens, tokens.length, new KvCache(ts.config(), 64, KvType.F32), true, null);
            assertArrayEquals(ls, ld);
        }
    }

    /** Copies the model keeping only expert 0: as a dense FFN, or as a one-expert MoE. */
    private static void write(GgufFile f, Path out, boolean asDense) {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        f.metadata().asMap().forEach((k, v) -> md.put(k.replace("qwen3moe.", asDense ? "qwen3." : "qwen3moe."), v));
        md.put("general.architecture", GgufValue.of(asDense ? "qwen3" : "qwen3moe"));
        String p = asDense ? "qwen3." : "qwen3moe.";
        int nFf = (int) f.requireTensor("blk.0.ffn_gate_exps.weight").dim(1);
        if (asDense) {
            md.remove(p + "expert_count");
            md.remove(p + "expert_used_count");
            md.put(p + "feed_forward_length", GgufValue.ofU32(nFf));
        } else {
            md.put(p + "expert_count", GgufValue.ofU32(1));
            md.put(p + "expert_used_count", GgufValue.ofU32(1));
        }
        try (GgufWriter w = GgufWriter.create(out, md)) {
            Map<String, java.lang.foreign.MemorySegment> data = new LinkedHashMap<>();
            for (GgufTensor t : f.tensors().values()) {
                String name = t.name();
                long[] dims = t.dims().clone();
                java.lang.foreign.MemorySegment seg = t.data();
                if (name.endsWith("_exps.weight")) {
                    dims = new long[]{dims[0], dims[1]};
                    seg = seg.asSlice(0, t.byteSize() / t.dim(2));
                    if (asDense) name = name.replace("_exps", "");
                } else if (name.endsWith("ffn_gate_inp.weight")) {
                    if (asDense) continue;
                    dims = new long[]{dims[0], 1};
                    seg = seg.asSlice(0, t.byteSize() / t.dim(1));
                }
                w.addTensor(name, t.type(), dims);
                data.put(name, seg);
            }
            data.forEach(w::writeData);
            w.finish();
        }
    }
}
