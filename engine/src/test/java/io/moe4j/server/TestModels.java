package io.moe4j.server;

import io.moe4j.SharedData;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Small models for the server tests: stories260K (trained, meaningful greedy English), optionally with a chat template. */
final class TestModels {
    private TestModels() {
    }

    static Path stories() {
        return SharedData.models().resolve("stories260K.gguf");
    }

    /** A copy of {@code source} with {@code tokenizer.chat_template} set, written into {@code dir}. */
    static Path withChatTemplate(Path source, String template, Path dir, String name) {
        Path target = dir.resolve(name + ".gguf");
        try (GgufFile f = GgufFile.open(source); GgufWriter w = GgufWriter.create(target, f.metadata())) {
            w.putMetadata("tokenizer.chat_template", GgufValue.of(template));
            w.putMetadata("general.name", GgufValue.of(name));
            for (GgufTensor t : f.tensors().values()) w.addTensor(t.name(), t.type(), t.dims());
            for (GgufTensor t : f.tensors().values()) w.writeData(t.name(), t.data());
            return w.finish();
        }
    }

    /** A chat template from the test resources (chat-templates/NAME). */
    static String template(String name) {
        try (InputStream in = TestModels.class.getResourceAsStream("/chat-templates/" + name)) {
            if (in == null) throw new IllegalStateException("missing chat-templates/" + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
