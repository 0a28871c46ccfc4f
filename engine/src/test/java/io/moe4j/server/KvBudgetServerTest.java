package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.Model;
import io.moe4j.batch.BatchScheduler;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.kernels.Backend;
import io.moe4j.kernels.KvPool;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import static io.moe4j.server.ConcurrencyTest.JSON;
import static io.moe4j.server.ConcurrencyTest.http;
import static io.moe4j.server.ConcurrencyTest.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A request that needs more KV pages than the budget has is answered 429; the request beside it is not harmed. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class KvBudgetServerTest {

    @Test
    void aRequestBeyondTheKvBudgetGets429AndTheOtherFinishes() throws Exception {
        try (Model model = Model.load(TestModels.stories())) {
            ModelConfig cfg = model.config();
            // 256 positions of every layer's keys and values; the budget holds 2.5 of them
            long span = 2L * cfg.blockCount() * KvPool.pageBytes(KvType.F16, cfg.kvHeadCount(), cfg.headDim());
            model.setKvBudget(span * 5 / 2);
            String shortBody = "{\"model\": \"stories260K\", \"prompt\": \"Once upon a time\", \"temperature\": 0, \"max_tokens\": 30, \"stream\": true}";
            // 700 positions need 3 spans: more than the whole budget
            String longBody = "{\"model\": \"stories260K\", \"prompt\": \"The little dog\", \"temperature\": 0, \"max_tokens\": 700}";
            String alone = model.generate("Once upon a time", GenerateOptions.greedy(30).withContextSize(1024)).text();
            ServerOptions o = ServerOptions.defaults().withPort(0).withParallel(2).withContextSize(1024);
            try (OpenAiServer server = OpenAiServer.start(o, model)) {
                BatchScheduler sched = server.scheduler();
                HttpResponse<InputStream> s = http.send(request(server, "/v1/completions", shortBody), HttpResponse.BodyHandlers.ofInputStream());
                assertEquals(200, s.statusCode());
                StringBuilder text = new StringBuilder();
                try (BufferedReader reader = new BufferedReader(new InputStreamReader(s.body(), StandardCharsets.UTF_8))) {
                    // the short request holds its pages from its first step on; then the long one comes
                    String line = reader.readLine();
                    while (line != null && !line.startsWith("data: ")) line = reader.readLine();
                    HttpResponse<String> big = http.send(request(server, "/v1/completions", longBody), HttpResponse.BodyHandlers.ofString());
                    assertEquals(429, big.statusCode(), big.body());
                    JsonNode err = JSON.readTree(big.body()).get("error");
                    assertEquals("kv_budget_exhausted", err.get("code").asText());
                    assertTrue(err.get("message").asText().contains("KV cache budget of"), err.get("message").asText());
                    for (; line != null; line = reader.readLine()) {
                        if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                        for (JsonNode c : JSON.readTree(line.substring(6)).get("choices")) text.append(c.get("text").asText());
                    }
                }
                assertEquals(alone, text.toString(), "the request beside the refused one is answered as alone");
                ConcurrencyTest.awaitIdle(sched);
                sched.clearPromptCache();
                assertEquals(0, sched.kvPool().stats().pagesInUse(), "every page is back in the pool");
                String metrics = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port() + "/metrics")).build(),
                        HttpResponse.BodyHandlers.ofString()).body();
                assertTrue(metrics.contains("moe4j_kv_pages{model=\"stories260K\",state=\"in_use\"} 0"), metrics);
                assertTrue(metrics.contains("moe4j_requests_rejected_kv_budget_total 1"), metrics);
                assertTrue(metrics.contains("moe4j_kv_budget_bytes{model=\"stories260K\"} " + span * 5 / 2), metrics);
            }
        }
    }
}
