package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.Rope;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line's RoPE overrides over the file's parameters (llama.cpp's --rope-* and --yarn-* options). */
class RopeOverridesTest {

    static ModelConfig config(String caseId, boolean longContext) {
        GoldenCase c = (longContext ? GoldenCase.longContext() : GoldenCase.all()).stream()
                .filter(x -> x.id().equals(caseId)).findFirst().orElseThrow();
        try (GgufFile f = GgufFile.open(c.modelPath())) {
            return ModelConfig.from(f.metadata(), io.moe4j.model.arch.Architectures.byName(f.metadata().getString("general.architecture"), "test"));
        }
    }

    static float[] angles(ModelConfig cfg, int pos) {
        Rope r = cfg.rope(null);
        float[] c = new float[r.nRot() / 2], s = new float[r.nRot() / 2], both = new float[r.nRot()];
        r.angles(pos, c, s, 0);
        System.arraycopy(c, 0, both, 0, c.length);
        System.arraycopy(s, 0, both, c.length, s.length);
        return both;
    }

    /**
     * qwen3moe-q8_0 has no RoPE scaling; qwen3moe_long-f16 has the same head size and base with YaRN x4 from 4096.
     * The first with {@code --rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 4096} rotates exactly as the second.
     */
    @Test
    void yarnGivenOnTheCommandLineRotatesAsTheSameYarnFromTheFile() {
        ModelConfig plain = config("qwen3moe-q8_0", false), yarnFile = config("qwen3moe_long-f16", true);
        assertEquals(Rope.Scaling.NONE, plain.ropeScaling());
        assertEquals(Rope.Scaling.YARN, yarnFile.ropeScaling());
        ModelConfig overridden = new RopeOverrides(Rope.Scaling.YARN, 4.0, null, 4096, null, null, null, null).apply(plain);
        for (int pos : new int[]{0, 1, 4095, 16383}) {
            assertArrayEquals(angles(yarnFile, pos), angles(overridden, pos), "position " + pos);
        }
        assertFalse(java.util.Arrays.equals(angles(plain, 16383), angles(overridden, 16383)));
        assertEquals(16384, overridden.modelContext(), "YaRN x4 of 4096 implies a context of 16384");
        assertEquals(16384, yarnFile.modelContext());
    }

    @Test
    void noneTurnsTheFilesScalingOffAndAScaleAloneKeepsItsType() {
        ModelConfig yarnFile = config("qwen3moe_long-f16", true);
        ModelConfig none = new RopeOverrides(Rope.Scaling.NONE, null, null, null, null, null, null, null).apply(yarnFile);
        assertEquals(Rope.Scaling.NONE, none.ropeScaling());
        assertEquals(1.0, none.ropeScalingFactor());
        ModelConfig eight = new RopeOverrides(null, 8.0, null, null, null, null, null, null).apply(yarnFile);
        assertEquals(Rope.Scaling.YARN, eight.ropeScaling());
        assertEquals(8.0, eight.ropeScalingFactor());
        assertEquals(32768, eight.modelContext());
        ModelConfig linear = new RopeOverrides(null, 2.0, 5e5, null, null, null, null, null).apply(config("qwen3moe-q8_0", false));
        assertEquals(Rope.Scaling.LINEAR, linear.ropeScaling(), "a scale for a model without scaling is linear scaling");
        assertEquals(5e5, linear.ropeBase());
        assertTrue(RopeOverrides.NONE.apply(yarnFile) == yarnFile);
    }

    @Test
    void invalidValuesNameTheirFlag() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new RopeOverrides(null, -1.0, null, null, null, null, null, null))
                .getMessage().startsWith("--rope-scale "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new RopeOverrides(null, null, 0.0, null, null, null, null, null))
                .getMessage().startsWith("--rope-freq-base "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new RopeOverrides(null, null, null, null, null, null, Double.NaN, null))
                .getMessage().startsWith("--yarn-beta-fast "));
    }
}
