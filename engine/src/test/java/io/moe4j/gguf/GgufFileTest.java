package io.moe4j.gguf;

import io.moe4j.SharedData;
import io.moe4j.kernels.GgmlType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class GgufFileTest {

    @Test
    void readsStories260KHeaderMetadataAndTensors() {
        try (GgufFile f = GgufFile.open(SharedData.models().resolve("stories260K.gguf"))) {
            assertEquals(3, f.version());
            GgufMetadata md = f.metadata();
            assertEquals("llama", md.getString("general.architecture"));
            assertEquals(64, md.getInt("llama.embedding_length"));
            assertEquals(5, md.getInt("llama.block_count"));
            assertEquals(512, md.getStringArray("tokenizer.ggml.tokens").length);
            assertEquals(48, f.tensors().size());
            GgufTensor emb = f.requireTensor("token_embd.weight");
            assertEquals(GgmlType.F32, emb.type());
            assertEquals(64, emb.dim(0));
            assertEquals(512, emb.dim(1));
            assertEquals(64L * 512 * 4, emb.byteSize());
        }
    }
}
