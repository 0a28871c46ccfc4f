package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Malformed and refused requests: each gets an OpenAI-style error object with the right 4xx status (never a 500 or
 * a stack trace), and the server keeps serving.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ErrorCasesTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String CHAT = "/v1/chat/completions", COMPLETIONS = "/v1/completions";
    static final String OK_MSG = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
    static Model model;
    static OpenAiServer server, mixtral, busy;
    static HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void start() throws Exception {
        model = Model.load(TestModels.stories());
        ServerOptions o = ServerOptions.defaults().withPort(0).withParallel(2).withContextSize(256).withMaxBodyBytes(64 * 1024);
        server = OpenAiServer.start(o, model);
        mixtral = OpenAiServer.start(o.withChatTemplate(TestModels.template("mixtral.jinja")), model);
        busy = OpenAiServer.start(o.withParallel(1).withQueueCapacity(0), model);
    }

    @AfterAll
    static void stop() {
        for (OpenAiServer s : new OpenAiServer[] {server, mixtral, busy}) if (s != null) s.close();
        if (model != null) model.close();
    }

    record Case(String name, String method, String path, String body, int status, String param, String code) {
    }

    static Case chat(String name, String body, String param, String code) {
        return new Case(name, "POST", CHAT, body, 400, param, code);
    }

    static List<Case> cases() {
        String m = "\"model\": \"stories260K\", ";
        String longPrompt = "word ".repeat(600);
        List<Case> c = new ArrayList<>();
        c.add(chat("malformed JSON", "{\"model\": \"stories260K\", ", null, "invalid_json"));
        c.add(chat("not JSON at all", "hello there", null, "invalid_json"));
        c.add(chat("empty body", "", null, "invalid_json"));
        c.add(chat("body is an array", "[1, 2]", null, "invalid_json"));
        c.add(chat("body is a string", "\"chat\"", null, "invalid_json"));
        c.add(chat("trailing garbage", "{" + m + OK_MSG + "} {}", null, "invalid_json"));
        c.add(chat("deeply nested", "{\"x\": " + "[".repeat(1000) + "]".repeat(1000) + "}", null, "invalid_json"));
        c.add(chat("missing model", "{" + OK_MSG + "}", "model", "missing_required_parameter"));
        c.add(chat("model is a number", "{\"model\": 7, " + OK_MSG + "}", "model", "invalid_type"));
        c.add(new Case("unknown model", "POST", CHAT, "{\"model\": \"gpt-4o\", " + OK_MSG + "}", 404, "model", "model_not_found"));
        c.add(chat("missing messages", "{" + m + "\"max_tokens\": 3}", "messages", "missing_required_parameter"));
        c.add(chat("empty messages", "{" + m + "\"messages\": []}", "messages", "empty_array"));
        c.add(chat("messages is a string", "{" + m + "\"messages\": \"hi\"}", "messages", "invalid_type"));
        c.add(chat("message is a string", "{" + m + "\"messages\": [\"hi\"]}", "messages[0]", "invalid_type"));
        c.add(chat("missing role", "{" + m + "\"messages\": [{\"content\": \"hi\"}]}", "messages[0].role", "missing_required_parameter"));
        c.add(chat("unknown role", "{" + m + "\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role", "invalid_value"));
        c.add(chat("content is a number", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": 42}]}", "messages[0].content", "invalid_type"));
        c.add(chat("user content null", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": null}]}", "messages[0].content", "missing_required_parameter"));
        c.add(chat("image part", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}",
                "messages[0].content[0].type", "invalid_value"));
        c.add(chat("text part without text", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}",
                "messages[0].content[0].text", "missing_required_parameter"));
        c.add(chat("tool message without id", "{" + m + "\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", "messages[0].tool_call_id", "missing_required_parameter"));
        c.add(chat("tool_calls on a user message", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": \"x\", \"tool_calls\": []}]}",
                "messages[0].tool_calls", "invalid_value"));
        c.add(chat("negative max_tokens", "{" + m + OK_MSG + ", \"max_tokens\": -1}", "max_tokens", "invalid_value"));
        c.add(chat("zero max_completion_tokens", "{" + m + OK_MSG + ", \"max_completion_tokens\": 0}", "max_completion_tokens", "invalid_value"));
        c.add(chat("absurd max_tokens", "{" + m + OK_MSG + ", \"max_tokens\": 1000000000}", "max_tokens", "invalid_value"));
        c.add(chat("huge max_tokens", "{" + m + OK_MSG + ", \"max_tokens\": 99999999999999999999999}", "max_tokens", "invalid_value"));
        c.add(chat("max_tokens as a string", "{" + m + OK_MSG + ", \"max_tokens\": \"10\"}", "max_tokens", "invalid_type"));
        c.add(chat("max_tokens as a decimal", "{" + m + OK_MSG + ", \"max_tokens\": 5.5}", "max_tokens", "invalid_type"));
        c.add(chat("temperature too high", "{" + m + OK_MSG + ", \"temperature\": 5}", "temperature", "invalid_value"));
        c.add(chat("temperature as a string", "{" + m + OK_MSG + ", \"temperature\": \"hot\"}", "temperature", "invalid_type"));
        c.add(chat("top_p above one", "{" + m + OK_MSG + ", \"top_p\": 1.5}", "top_p", "invalid_value"));
        c.add(chat("negative top_k", "{" + m + OK_MSG + ", \"top_k\": -3}", "top_k", "invalid_value"));
        c.add(chat("presence_penalty out of range", "{" + m + OK_MSG + ", \"presence_penalty\": 3}", "presence_penalty", "invalid_value"));
        c.add(chat("n greater than one", "{" + m + OK_MSG + ", \"n\": 2}", "n", "invalid_value"));
        c.add(chat("seed as a string", "{" + m + OK_MSG + ", \"seed\": \"abc\"}", "seed", "invalid_type"));
        c.add(chat("stop as a number", "{" + m + OK_MSG + ", \"stop\": 5}", "stop", "invalid_type"));
        c.add(chat("stop list with a number", "{" + m + OK_MSG + ", \"stop\": [\"a\", 3]}", "stop[1]", "invalid_type"));
        c.add(chat("too many stop strings", "{" + m + OK_MSG + ", \"stop\": [" + "\"x\",".repeat(30) + "\"y\"]}", "stop", "invalid_value"));
        c.add(chat("stream as a string", "{" + m + OK_MSG + ", \"stream\": \"yes\"}", "stream", "invalid_type"));
        c.add(chat("stream_options without stream", "{" + m + OK_MSG + ", \"stream_options\": {\"include_usage\": true}}", "stream_options", "invalid_value"));
        c.add(chat("logprobs as a number", "{" + m + OK_MSG + ", \"logprobs\": 1}", "logprobs", "invalid_type"));
        c.add(chat("top_logprobs without logprobs", "{" + m + OK_MSG + ", \"top_logprobs\": 2}", "top_logprobs", "invalid_value"));
        c.add(chat("top_logprobs too many", "{" + m + OK_MSG + ", \"logprobs\": true, \"top_logprobs\": 50}", "top_logprobs", "invalid_value"));
        c.add(chat("unknown response_format", "{" + m + OK_MSG + ", \"response_format\": {\"type\": \"yaml\"}}", "response_format.type", "invalid_value"));
        c.add(chat("tools not an array", "{" + m + OK_MSG + ", \"tools\": {\"type\": \"function\"}}", "tools", "invalid_type"));
        c.add(chat("tool of another type", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"retrieval\"}]}", "tools[0].type", "invalid_value"));
        c.add(chat("tool without function", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\"}]}", "tools[0].function", "missing_required_parameter"));
        c.add(chat("tool name with spaces", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get weather\"}}]}",
                "tools[0].function.name", "invalid_value"));
        c.add(chat("tool parameters not an object schema", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": "
                + "{\"name\": \"f\", \"parameters\": {\"type\": \"string\"}}}]}", "tools[0].function.parameters", "invalid_function_parameters"));
        c.add(chat("tool schema with a bad type", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": "
                + "{\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"str\"}}}}}]}",
                "tools[0].function.parameters.properties.a.type", "invalid_function_parameters"));
        c.add(chat("tool schema required not a list", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": "
                + "{\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"required\": \"a\"}}}]}",
                "tools[0].function.parameters.required", "invalid_function_parameters"));
        c.add(chat("duplicate tool names", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}, "
                + "{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]}", "tools[1].function.name", "invalid_value"));
        c.add(chat("tool_choice naming an unknown tool", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], "
                + "\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"g\"}}}", "tool_choice", "invalid_value"));
        c.add(chat("tool_choice unknown mode", "{" + m + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], "
                + "\"tool_choice\": \"sometimes\"}", "tool_choice", "invalid_value"));
        c.add(chat("tool_choice required without tools", "{" + m + OK_MSG + ", \"tool_choice\": \"required\"}", "tool_choice", "invalid_value"));
        c.add(chat("prompt longer than the context", "{" + m + "\"messages\": [{\"role\": \"user\", \"content\": \"" + longPrompt + "\"}]}",
                "messages", "context_length_exceeded"));
        c.add(new Case("completion without prompt", "POST", COMPLETIONS, "{" + m + "\"max_tokens\": 3}", 400, "prompt", "missing_required_parameter"));
        c.add(new Case("completion prompt is an object", "POST", COMPLETIONS, "{" + m + "\"prompt\": {}}", 400, "prompt", "invalid_type"));
        c.add(new Case("completion with several prompts", "POST", COMPLETIONS, "{" + m + "\"prompt\": [\"a\", \"b\"]}", 400, "prompt", "invalid_value"));
        c.add(new Case("completion token outside the vocabulary", "POST", COMPLETIONS, "{" + m + "\"prompt\": [1, 99999]}", 400, "prompt", "invalid_value"));
        c.add(new Case("completion prompt too long", "POST", COMPLETIONS, "{" + m + "\"prompt\": \"" + longPrompt + "\"}", 400, "messages", "context_length_exceeded"));
        c.add(new Case("completion best_of", "POST", COMPLETIONS, "{" + m + "\"prompt\": \"x\", \"best_of\": 3}", 400, "best_of", "invalid_value"));
        c.add(new Case("unknown endpoint", "POST", "/v1/embeddings", "{}", 404, null, "unknown_url"));
        c.add(new Case("wrong method", "GET", CHAT, null, 405, null, "method_not_allowed"));
        c.add(new Case("unknown model by id", "GET", "/v1/models/nope", null, 404, "model", "model_not_found"));
        c.add(new Case("body over the limit", "POST", CHAT, "{\"model\": \"" + "x".repeat(70 * 1024) + "\"}", 413, null, "request_too_large"));
        return c;
    }

    static HttpResponse<String> send(OpenAiServer s, String method, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path)).timeout(Duration.ofSeconds(30));
        if (headers.length > 0) b.headers(headers);
        if (body == null) b.method(method, HttpRequest.BodyPublishers.noBody());
        else b.method(method, HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json");
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The error object has exactly OpenAI's four fields. */
    static JsonNode error(HttpResponse<String> r) throws Exception {
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), r.headers().toString());
        JsonNode root = JSON.readTree(r.body());
        assertEquals(Set.of("error"), fieldNames(root), r.body());
        JsonNode e = root.get("error");
        assertEquals(Set.of("message", "type", "param", "code"), fieldNames(e), r.body());
        assertTrue(e.get("message").isTextual() && !e.get("message").asText().isBlank());
        String message = e.get("message").asText();
        assertFalse(message.contains("Exception") || message.contains("\tat "), r.body());
        assertFalse(message.contains("[Source:") || message.contains("StreamReadFeature"), "Jackson internals in " + r.body());
        return e;
    }

    static Set<String> fieldNames(JsonNode n) {
        Set<String> s = new java.util.HashSet<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) s.add(it.next());
        return s;
    }

    @Test
    void aJsonSyntaxErrorSaysWhatAndWhere() throws Exception {
        HttpResponse<String> r = send(server, "POST", CHAT, "{\"model\": \"stories260K\", \"messages\": [}");
        assertEquals(400, r.statusCode());
        String message = error(r).get("message").asText();
        assertTrue(message.contains("Unexpected close marker '}'") && message.contains("line 1, column 38"), message);
    }

    @Test
    void everyRequestIsLoggedOnceWithItsStatusAndTokens() throws Exception {
        List<String> lines = java.util.Collections.synchronizedList(new ArrayList<>());
        // A server of its own: the other tests' requests would be logged too.
        try (OpenAiServer logged = OpenAiServer.start(ServerOptions.defaults().withPort(0).withContextSize(256), model)) {
            logged.setRequestLog(lines::add);
            send(logged, "POST", COMPLETIONS, "{\"model\": \"stories260K\", \"prompt\": \"Once\", \"max_tokens\": 3}");
            send(logged, "GET", "/v1/nothing-here", null);
            // Each line is written once its response is complete, so the two may come in either order.
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (lines.size() < 2 && System.nanoTime() < deadline) Thread.sleep(10);
        }
        assertEquals(2, lines.size(), lines.toString());
        lines.sort(java.util.Comparator.comparing((String l) -> !l.contains("POST")));
        assertTrue(lines.get(0).matches("127\\.0\\.0\\.1 POST /v1/completions 200 \\d+\\.\\d{3} s \\| prompt \\d+ tokens \\(\\d+ cached\\), "
                + "completion 3 tokens, max_tokens"), lines.get(0));
        assertTrue(lines.get(1).startsWith("127.0.0.1 GET /v1/nothing-here 404 "), lines.get(1));
    }

    @TestFactory
    List<DynamicTest> malformedRequests() {
        List<Case> cases = cases();
        assertTrue(cases.size() >= 30, "at least 30 malformed requests");
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases) {
            tests.add(DynamicTest.dynamicTest(c.name(), () -> {
                HttpResponse<String> r = send(server, c.method(), c.path(), c.body());
                assertEquals(c.status(), r.statusCode(), c.name() + ": " + r.body());
                JsonNode e = error(r);
                assertEquals(c.code(), e.get("code").isNull() ? null : e.get("code").asText(), r.body());
                assertEquals(c.param(), e.get("param").isNull() ? null : e.get("param").asText(), r.body());
                if (c.status() != 404 && c.status() != 405 && c.status() != 413) assertEquals("invalid_request_error", e.get("type").asText());
            }));
        }
        // ... and the server still serves everyone else.
        tests.add(DynamicTest.dynamicTest("still serving", () -> {
            HttpResponse<String> r = send(server, "POST", COMPLETIONS, "{\"model\": \"stories260K\", \"prompt\": \"Once\", \"max_tokens\": 4, "
                    + "\"unknown_field\": {\"ignored\": true}, \"user\": \"u1\"}");
            assertEquals(200, r.statusCode(), r.body());
            assertEquals(4, JSON.readTree(r.body()).get("usage").get("completion_tokens").asInt());
        }));
        return tests;
    }

    @Test
    void templateRejectionIsABadRequest() throws Exception {
        HttpResponse<String> r = send(mixtral, "POST", CHAT, "{\"model\": \"stories260K\", \"messages\": [{\"role\": \"system\", \"content\": \"s\"}, "
                + "{\"role\": \"user\", \"content\": \"u\"}]}");
        assertEquals(400, r.statusCode(), r.body());
        JsonNode e = error(r);
        assertTrue(e.get("message").asText().contains("Conversation roles must alternate"), r.body());
        HttpResponse<String> ok = send(mixtral, "POST", CHAT, "{\"model\": \"stories260K\", \"max_tokens\": 3, " + OK_MSG + "}");
        assertEquals(200, ok.statusCode(), ok.body());
    }

    @Test
    void fullQueueAnswers429WithRetryAfter() throws Exception {
        // One slot, no queue: while a long stream runs, the next request is refused.
        HttpRequest streamReq = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + busy.port() + COMPLETIONS))
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"stories260K\", \"prompt\": \"Once\", \"max_tokens\": 250, \"stream\": true}"))
                .build();
        HttpResponse<InputStream> stream = http.send(streamReq, HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream in = stream.body()) {
            assertEquals(200, stream.statusCode());
            assertTrue(in.readNBytes(20).length == 20, "the stream started");
            HttpResponse<String> r = send(busy, "POST", COMPLETIONS, "{\"model\": \"stories260K\", \"prompt\": \"x\", \"max_tokens\": 2}");
            assertEquals(429, r.statusCode(), r.body());
            assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
            assertEquals("server_busy", error(r).get("code").asText());
        }
        // The abandoned stream is cancelled; the slot frees up.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (busy.scheduler().activeCount() > 0 && System.nanoTime() < deadline) Thread.sleep(20);
        HttpResponse<String> again = send(busy, "POST", COMPLETIONS, "{\"model\": \"stories260K\", \"prompt\": \"x\", \"max_tokens\": 2}");
        assertEquals(200, again.statusCode(), again.body());
    }

    @Test
    void healthAndMetrics() throws Exception {
        HttpResponse<String> h = send(server, "GET", "/health", null);
        assertEquals(200, h.statusCode());
        assertEquals("ok", JSON.readTree(h.body()).get("status").asText());
        send(server, "POST", COMPLETIONS, "{\"model\": \"stories260K\", \"prompt\": \"Once\", \"max_tokens\": 3}");
        HttpResponse<String> m = send(server, "GET", "/metrics", null);
        assertEquals(200, m.statusCode());
        String text = m.body();
        assertTrue(m.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        for (String metric : List.of("moe4j_requests_total{endpoint=\"completions\",status=\"200\"}", "moe4j_prompt_tokens_total",
                "moe4j_completion_tokens_total", "moe4j_tokens_per_second", "moe4j_queue_depth", "moe4j_kv_cache_bytes",
                "moe4j_active_sequences")) {
            assertTrue(text.contains(metric), metric + " in\n" + text);
        }
        assertNotNull(text);
    }

    @Test
    void healthSaysLoadingUntilTheModelIsThere() throws Exception {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        try (OpenAiServer loading = OpenAiServer.startLoading(ServerOptions.defaults().withPort(0), () -> {
            release.await();
            return Model.load(TestModels.stories());
        })) {
            HttpResponse<String> h = send(loading, "GET", "/health", null);
            assertEquals(503, h.statusCode());
            assertEquals("loading", JSON.readTree(h.body()).get("status").asText());
            HttpResponse<String> c = send(loading, "POST", CHAT, "{\"model\": \"stories260K\", " + OK_MSG + "}");
            assertEquals(503, c.statusCode());
            assertEquals("model_loading", error(c).get("code").asText());
            release.countDown();
            assertTrue(loading.awaitReady(30, TimeUnit.SECONDS));
            assertEquals(200, send(loading, "GET", "/health", null).statusCode());
        }
    }

}
