package io.moe4j.server.jinja;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Real chat templates (Llama 3, Llama 3.1 with tools, Mixtral, Mistral Nemo with tools, Qwen3, OLMoE, gpt-oss
 * harmony) and an engine-feature template, rendered by our engine and compared byte for byte with what Hugging
 * Face's own renderer (@huggingface/jinja) produced for the same inputs: see tools/chat-templates/render-vectors.mjs.
 */
class ChatTemplateVectorsTest {
    private static final Clock CLOCK = Clock.fixed(LocalDateTime.of(2025, 6, 15, 10, 30).atZone(ZoneId.systemDefault()).toInstant(),
            ZoneId.systemDefault());

    @TestFactory
    List<DynamicTest> vectors() throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        JsonNode all;
        try (InputStream in = resource("vectors.json")) {
            all = mapper.readTree(in);
        }
        Map<String, Template> templates = new HashMap<>();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode v : all) {
            String file = v.get("template").asText();
            String name = file + " / " + v.get("case").asText();
            tests.add(DynamicTest.dynamicTest(name, () -> {
                Template t = templates.computeIfAbsent(file, f -> Template.compile(read(f)));
                @SuppressWarnings("unchecked")
                Map<String, Object> ctx = mapper.convertValue(v.get("context"), Map.class);
                if (v.get("error").isNull()) {
                    assertEquals(v.get("expected").asText(), t.render(ctx, CLOCK), name);
                } else {
                    TemplateException e = assertThrows(TemplateException.Raised.class, () -> t.render(ctx, CLOCK), name);
                    assertEquals(v.get("error").asText(), e.getMessage());
                }
            }));
        }
        return tests;
    }

    private static InputStream resource(String name) {
        InputStream in = ChatTemplateVectorsTest.class.getResourceAsStream("/chat-templates/" + name);
        if (in == null) throw new IllegalStateException("missing test resource chat-templates/" + name);
        return in;
    }

    static String read(String name) {
        try (InputStream in = resource(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
