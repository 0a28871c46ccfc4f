package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import io.moe4j.batch.BatchScheduler;
import io.moe4j.generate.GenerateOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sixteen clients at once against four batch slots, some of them hanging up mid-stream: every completed answer is
 * the one the request gets alone (greedy), the hung-up generations stop early, and the KV memory returns to idle.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConcurrencyTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int CLIENTS = 16, MAX_TOKENS = 40, LONG = 400;
    static final String[] STARTS = {"Once upon a time", "Lily went to the park", "The little dog", "Tom had a red ball",
            "One day, a bird", "The sun was hot", "Sam and Mia", "There was a big tree", "The cat saw a fish",
            "Ben liked to run", "A girl named Sue", "In the garden", "The boy was sad", "Max found a box",
            "It was a cold day", "The old man"};
    static Model model;
    static HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void load() {
        model = Model.load(TestModels.stories());
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static boolean hangsUp(int i) {
        return i % 4 == 3;
    }

    static String body(int i, boolean stream) {
        return "{\"model\": \"stories260K\", \"prompt\": \"" + STARTS[i] + "\", \"temperature\": 0, \"max_tokens\": "
                + (hangsUp(i) ? LONG : MAX_TOKENS) + (stream ? ", \"stream\": true" : "") + "}";
    }

    static HttpRequest request(OpenAiServer s, String path, String body) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path)).timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build();
    }

    /** Reads an SSE completion stream; with {@code hangUpAfter} > 0, closes the connection after that many chunks. */
    static String stream(OpenAiServer s, String body, int hangUpAfter) throws Exception {
        HttpResponse<InputStream> r = http.send(request(s, "/v1/completions", body), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        StringBuilder text = new StringBuilder();
        int chunks = 0;
        try (InputStream in = r.body(); BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (!line.startsWith("data: ")) continue;
                String data = line.substring(6);
                if (data.equals("[DONE]")) break;
                JsonNode chunk = JSON.readTree(data);
                for (JsonNode c : chunk.get("choices")) text.append(c.get("text").asText());
                if (hangUpAfter > 0 && ++chunks >= hangUpAfter) return null; // hang up
            }
        }
        return text.toString();
    }

    static String blocking(OpenAiServer s, String body) throws Exception {
        HttpResponse<String> r = http.send(request(s, "/v1/completions", body), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body()).get("choices").get(0).get("text").asText();
    }

    static void awaitIdle(BatchScheduler sched) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while ((sched.activeCount() > 0 || sched.queueDepth() > 0) && System.nanoTime() < deadline) Thread.sleep(10);
        assertEquals(0, sched.activeCount());
        assertEquals(0, sched.queueDepth());
    }

    @ParameterizedTest(name = "prompt cache {0}")
    @ValueSource(booleans = {true, false})
    void sixteenClientsSomeHangingUp(boolean promptCache) throws Exception {
        ServerOptions o = ServerOptions.defaults().withPort(0).withParallel(4).withContextSize(512).withQueueCapacity(32)
                .withPromptCache(promptCache);
        try (OpenAiServer server = OpenAiServer.start(o, model)) {
            BatchScheduler sched = server.scheduler();
            // Each request alone, one after the other.
            String[] alone = new String[CLIENTS];
            for (int i = 0; i < CLIENTS; i++) {
                if (!hangsUp(i)) alone[i] = blocking(server, body(i, false));
            }
            for (int i = 0; i < CLIENTS; i++) {
                if (alone[i] != null) {
                    assertEquals(model.generate(STARTS[i], GenerateOptions.greedy(MAX_TOKENS).withContextSize(512)).text(), alone[i], STARTS[i]);
                }
            }
            awaitIdle(sched);
            sched.clearPromptCache();
            long idle = sched.stats().kvBytes();
            assertEquals(0, idle);
            int idlePages = sched.kvPool().stats().pagesInUse();
            long cancelledBefore = sched.stats().requestsCancelled();
            long generatedBefore = sched.stats().tokensGenerated();

            // All at once: 4 slots, 12 waiting; every fourth client hangs up after 3 chunks of a long answer.
            ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
            CountDownLatch go = new CountDownLatch(1);
            List<Future<String>> answers = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                int k = i;
                answers.add(pool.submit(() -> {
                    go.await();
                    if (hangsUp(k)) return stream(server, body(k, true), 3);
                    return k % 2 == 0 ? stream(server, body(k, true), 0) : blocking(server, body(k, false));
                }));
            }
            go.countDown();
            for (int i = 0; i < CLIENTS; i++) {
                String got = answers.get(i).get(60, TimeUnit.SECONDS);
                if (!hangsUp(i)) assertEquals(alone[i], got, "client " + i + " (" + STARTS[i] + ")");
            }
            pool.shutdown();

            awaitIdle(sched);
            BatchScheduler.Stats s = sched.stats();
            assertEquals(4, s.requestsCancelled() - cancelledBefore, "the hung-up generations were cancelled");
            long generated = s.tokensGenerated() - generatedBefore;
            System.out.println("concurrency: " + generated + " tokens generated, " + s.steps() + " steps in all");
            assertTrue(generated < 12L * MAX_TOKENS + 4L * LONG / 2, "hung-up generations stopped early: " + generated + " tokens");
            assertEquals(0, s.kvBytesActive(), "no sequence holds KV memory");
            if (!promptCache) {
                assertEquals(idle, s.kvBytes(), "KV memory is back at its idle level");
            } else {
                assertTrue(s.kvBytes() > 0, "finished sequences stay in the prompt cache");
                sched.clearPromptCache();
                assertEquals(idle, sched.stats().kvBytes(), "KV memory is back at its idle level");
            }
            assertEquals(idlePages, sched.kvPool().stats().pagesInUse(), "KV pages are back at their idle level");
            HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertTrue(metrics.body().contains("moe4j_kv_pages{model=\"stories260K\",state=\"in_use\"} " + idlePages), metrics.body());
        }
    }

    @Test
    void multiTurnChatReusesThePromptCache() throws Exception {
        try (OpenAiServer server = OpenAiServer.start(ServerOptions.defaults().withPort(0).withParallel(2).withContextSize(1024), model)) {
            String turn1 = "{\"model\": \"stories260K\", \"temperature\": 0, \"max_tokens\": 20, \"messages\": ["
                    + "{\"role\": \"system\", \"content\": \"You tell short stories.\"}, {\"role\": \"user\", \"content\": \"A story about a dog.\"}]}";
            HttpResponse<String> r1 = http.send(request(server, "/v1/chat/completions", turn1), HttpResponse.BodyHandlers.ofString());
            JsonNode a1 = JSON.readTree(r1.body());
            String answer = a1.get("choices").get(0).get("message").get("content").asText();
            int prompt1 = a1.get("usage").get("prompt_tokens").asInt();
            String turn2 = "{\"model\": \"stories260K\", \"temperature\": 0, \"max_tokens\": 20, \"messages\": ["
                    + "{\"role\": \"system\", \"content\": \"You tell short stories.\"}, {\"role\": \"user\", \"content\": \"A story about a dog.\"}, "
                    + "{\"role\": \"assistant\", \"content\": " + JSON.writeValueAsString(answer) + "}, "
                    + "{\"role\": \"user\", \"content\": \"And then?\"}]}";
            HttpResponse<String> r2 = http.send(request(server, "/v1/chat/completions", turn2), HttpResponse.BodyHandlers.ofString());
            JsonNode a2 = JSON.readTree(r2.body());
            int cached = a2.get("usage").get("prompt_tokens_details").get("cached_tokens").asInt();
            assertTrue(cached >= prompt1 - 1, "turn 2 reuses turn 1's keys and values: " + cached + " of " + prompt1);
            // The reuse does not change the answer: the same request on a fresh server without a prompt cache.
            try (OpenAiServer fresh = OpenAiServer.start(ServerOptions.defaults().withPort(0).withContextSize(1024).withPromptCache(false), model)) {
                HttpResponse<String> r3 = http.send(request(fresh, "/v1/chat/completions", turn2), HttpResponse.BodyHandlers.ofString());
                JsonNode a3 = JSON.readTree(r3.body());
                assertEquals(0, a3.get("usage").get("prompt_tokens_details").get("cached_tokens").asInt());
                assertEquals(a3.get("choices").get(0).get("message").get("content").asText(),
                        a2.get("choices").get(0).get("message").get("content").asText());
            }
        }
    }
}
