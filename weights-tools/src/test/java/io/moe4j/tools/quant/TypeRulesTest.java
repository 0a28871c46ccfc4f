package io.moe4j.tools.quant;

import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.moe4j.kernels.GgmlType.F32;
import static io.moe4j.kernels.GgmlType.MXFP4;
import static io.moe4j.kernels.GgmlType.Q4_K;
import static io.moe4j.kernels.GgmlType.Q6_K;
import static io.moe4j.kernels.GgmlType.Q8_0;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** llama-quantize's per-tensor rules on a model shape of 4 layers with 8 experts (where its MoE bumps apply). */
class TypeRulesTest {

    static List<TypeRules.Tensor> model(boolean tied) {
        List<TypeRules.Tensor> t = new ArrayList<>();
        t.add(new TypeRules.Tensor("token_embd.weight", new long[]{256, 1000}, F32));
        t.add(new TypeRules.Tensor("output_norm.weight", new long[]{256}, F32));
        if (!tied) t.add(new TypeRules.Tensor("output.weight", new long[]{256, 1000}, F32));
        for (int i = 0; i < 4; i++) {
            String b = "blk." + i + ".";
            for (String n : new String[]{"attn_k", "attn_output", "attn_q", "attn_v"}) t.add(new TypeRules.Tensor(b + n + ".weight", new long[]{256, 256}, F32));
            t.add(new TypeRules.Tensor(b + "attn_norm.weight", new long[]{256}, F32));
            t.add(new TypeRules.Tensor(b + "ffn_down_exps.weight", new long[]{512, 256, 8}, F32));
            t.add(new TypeRules.Tensor(b + "ffn_gate_exps.weight", new long[]{256, 512, 8}, F32));
            t.add(new TypeRules.Tensor(b + "ffn_gate_inp.weight", new long[]{256, 8}, F32));
            t.add(new TypeRules.Tensor(b + "ffn_up_exps.weight", new long[]{256, 512, 8}, F32));
        }
        return t;
    }

    static GgmlType typeOf(List<TypeRules.Tensor> t, List<GgmlType> types, String name) {
        for (int i = 0; i < t.size(); i++) if (t.get(i).name().equals(name)) return types.get(i);
        throw new AssertionError(name);
    }

    @Test
    void q4kMixWithEightExperts() {
        List<TypeRules.Tensor> t = model(false);
        TypeRules r = new TypeRules(TypeRules.Options.of(FileType.Q4_K_M), 8, 4);
        List<GgmlType> types = r.plan(t);
        assertEquals(Q6_K, typeOf(t, types, "output.weight"));
        assertEquals(Q4_K, typeOf(t, types, "token_embd.weight"));
        assertEquals(F32, typeOf(t, types, "blk.0.ffn_gate_inp.weight"));
        assertEquals(F32, typeOf(t, types, "blk.0.attn_norm.weight"));
        assertEquals(Q8_0, typeOf(t, types, "blk.2.attn_v.weight"));   // 8 experts: attn_v and attn_k to Q8_0
        assertEquals(Q8_0, typeOf(t, types, "blk.2.attn_k.weight"));
        assertEquals(Q6_K, typeOf(t, types, "blk.1.attn_output.weight")); // Q5_K in llama.cpp, Q6_K here
        // use_more_bits(i, 4): i < 0, i >= 3 or (i - 0) % 3 == 2
        assertEquals(Q4_K, typeOf(t, types, "blk.0.ffn_down_exps.weight"));
        assertEquals(Q4_K, typeOf(t, types, "blk.1.ffn_down_exps.weight"));
        assertEquals(Q6_K, typeOf(t, types, "blk.2.ffn_down_exps.weight"));
        assertEquals(Q6_K, typeOf(t, types, "blk.3.ffn_down_exps.weight"));
        assertEquals(1, r.notes().size());
    }

    @Test
    void tiedEmbeddingsAreTreatedAsTheOutput() {
        List<TypeRules.Tensor> t = model(true);
        assertEquals(Q6_K, typeOf(t, new TypeRules(TypeRules.Options.of(FileType.Q4_K_M), 8, 4).plan(t), "token_embd.weight"));
        assertEquals(Q8_0, typeOf(t, new TypeRules(TypeRules.Options.of(FileType.MXFP4_MOE), 8, 4).plan(t), "token_embd.weight"));
    }

    @Test
    void expertsTypeAloneConvertsOnlyTheExperts() {
        List<TypeRules.Tensor> t = model(false);
        List<GgmlType> types = new TypeRules(new TypeRules.Options(null, MXFP4, null, null, false, false), 8, 4).plan(t);
        for (int i = 0; i < t.size(); i++) {
            assertEquals(t.get(i).name().contains("_exps") ? MXFP4 : F32, types.get(i), t.get(i).name());
        }
    }

    @Test
    void keepOutputAndOverrides() {
        List<TypeRules.Tensor> t = model(false);
        List<GgmlType> types = new TypeRules(new TypeRules.Options(FileType.Q8_0, null, null, Q4_K, false, true), 4, 4).plan(t);
        assertEquals(F32, typeOf(t, types, "output.weight"));
        assertEquals(Q4_K, typeOf(t, types, "token_embd.weight"));
        assertEquals(Q8_0, typeOf(t, types, "blk.3.ffn_up_exps.weight"));
    }

    @Test
    void rowsThatAreNotWholeBlocksFallBack() {
        List<TypeRules.Tensor> t = List.of(new TypeRules.Tensor("blk.0.ffn_down.weight", new long[]{96, 64}, F32),
                new TypeRules.Tensor("blk.0.ffn_up.weight", new long[]{48, 64}, F32));
        TypeRules r = new TypeRules(new TypeRules.Options(FileType.Q6_K, null, null, null, true, false), 0, 1);
        assertEquals(List.of(Q8_0, GgmlType.F16), r.plan(t));
    }
}
