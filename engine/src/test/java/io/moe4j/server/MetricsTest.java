package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** /metrics on a real MoE model: per-layer expert selection counts add up to top-k per evaluated token. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MetricsTest {
    @Test
    void expertSelectionsPerLayer() throws Exception {
        try (Model model = Model.load(SharedData.golden().resolve("models/qwen3moe-q8_0.gguf"));
             OpenAiServer server = OpenAiServer.start(ServerOptions.defaults().withPort(0).withContextSize(256), model)) {
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + server.port();
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"" + server.modelId() + "\", \"prompt\": \"Once upon a time\", "
                            + "\"max_tokens\": 6, \"temperature\": 0}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode usage = new ObjectMapper().readTree(r.body()).get("usage");
            assertEquals(6, usage.get("completion_tokens").asInt());
            // Tokens run through the model: the prompt, and every generated token but the last.
            int fed = usage.get("prompt_tokens").asInt() + 5;
            String metrics = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            int layers = model.config().blockCount(), k = model.config().expertUsedCount();
            long[] perLayer = new long[layers];
            Matcher m = Pattern.compile("moe4j_expert_selections_total\\{model=\"[^\"]*\",layer=\"(\\d+)\",expert=\"(\\d+)\"} (\\d+)").matcher(metrics);
            int series = 0;
            while (m.find()) {
                perLayer[Integer.parseInt(m.group(1))] += Long.parseLong(m.group(3));
                series++;
            }
            assertEquals(layers * model.config().expertCount(), series, metrics);
            for (int l = 0; l < layers; l++) assertEquals((long) fed * k, perLayer[l], "layer " + l);
            assertTrue(metrics.contains("moe4j_completion_tokens_total{model=\"" + server.modelId() + "\"} 6"), metrics);
            assertTrue(metrics.contains("moe4j_prompt_tokens_total{model=\"" + server.modelId() + "\"} " + usage.get("prompt_tokens").asInt()), metrics);
        }
    }
}
