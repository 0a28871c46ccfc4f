package io.moe4j.compress;

import io.moe4j.Model;
import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** A short text round-trips through every golden architecture, several chunks coded together in each pass. */
class GoldenArchitecturesRoundTripTest {
    @TempDir
    Path tmp;

    @Test
    void aShortTextRoundTripsWithEveryArchitecture() throws IOException {
        byte[] text = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.\n"
                + "One day, she saw a big red ball in the park. \u00c9t\u00e9 \u2603!\n").getBytes(StandardCharsets.UTF_8);
        Path in = tmp.resolve("in"), packed = tmp.resolve("packed"), out = tmp.resolve("out");
        Files.write(in, text);
        // one model per architecture: llama (dense, trained), llama MoE, qwen3moe, qwen2moe, olmoe, gpt-oss
        Path[] models = {SharedData.models().resolve("stories260K.gguf"), SharedData.goldenModel("llama_moe-q4_k_m"),
                SharedData.goldenModel("qwen3moe-q8_0"), SharedData.goldenModel("qwen2moe-q8_0"),
                SharedData.goldenModel("olmoe-q8_0"), SharedData.goldenModel("gpt_oss-mxfp4_moe")};
        for (Path p : models) {
            try (Model m = Model.load(p)) {
                ModelCompressor c = new ModelCompressor(m, "moe4j test");
                // chunks of 20 tokens, 3 per pass, 7 tokens per chunk per compression pass
                ModelCompressor.Options o = new ModelCompressor.Options(20, 7, 3, 1);
                c.compress(in, packed, o, ModelCompressor.Progress.NONE);
                c.decompress(packed, out, o, ModelCompressor.Progress.NONE);
                assertArrayEquals(text, Files.readAllBytes(out), p.getFileName().toString());
            }
        }
    }
}
