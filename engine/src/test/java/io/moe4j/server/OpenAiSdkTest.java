package io.moe4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.ResponseFormatJsonObject;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.chat.completions.ChatCompletionToolMessageParam;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Drives a real server with the official OpenAI Java SDK. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OpenAiSdkTest {
    static final String PROMPT = "Once upon a time";
    @TempDir
    static Path tmp;
    static io.moe4j.Model stories, templated;
    static OpenAiServer plain, tools, keyed;
    static OpenAIClient client, toolClient;
    static final List<String> prompts = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        stories = io.moe4j.Model.load(TestModels.stories());
        Path withTemplate = TestModels.withChatTemplate(TestModels.stories(), TestModels.template("qwen3.jinja"), tmp, "stories-qwen3");
        templated = io.moe4j.Model.load(withTemplate);
        ServerOptions o = ServerOptions.defaults().withPort(0).withParallel(2).withContextSize(512);
        plain = OpenAiServer.start(o, stories);
        tools = OpenAiServer.start(o.withContextSize(2048), templated);
        tools.setSamplerHook((promptText, standard) -> {
            prompts.add(promptText);
            String answer = promptText.contains("<tool_response>")
                    ? "The weather in Paris is 21 degrees and clear."
                    : "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>";
            return new ScriptedSampler(templated.tokenizer(), answer);
        });
        keyed = OpenAiServer.start(o.withApiKey("sk-secret"), stories);
        client = client(plain, "sk-anything");
        toolClient = client(tools, "sk-anything");
    }

    static OpenAIClient client(OpenAiServer s, String key) {
        return OpenAIOkHttpClient.builder().baseUrl(s.baseUrl().toString()).apiKey(key).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
    }

    @AfterAll
    static void stop() {
        for (OpenAIClient c : new OpenAIClient[] {client, toolClient}) if (c != null) c.close();
        for (OpenAiServer s : new OpenAiServer[] {plain, tools, keyed}) if (s != null) s.close();
        if (stories != null) stories.close();
        if (templated != null) templated.close();
    }

    static ChatCompletionCreateParams.Builder chat(String model) {
        return ChatCompletionCreateParams.builder().model(model);
    }

    @Test
    void listsTheModel() {
        List<Model> models = client.models().list().data();
        assertEquals(1, models.size());
        assertEquals("stories260K", models.getFirst().id());
        assertEquals("stories260K", client.models().retrieve("stories260K").id());
    }

    @Test
    void completionEqualsTheEngineGreedy() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K").prompt(PROMPT)
                .maxTokens(40).temperature(0).build());
        GenerationResult alone = stories.generate(PROMPT, GenerateOptions.greedy(40));
        assertEquals(alone.text(), c.choices().getFirst().text());
        assertEquals("length", c.choices().getFirst().finishReason().asString());
        assertTrue(c.id().startsWith("cmpl-"));
        var u = c.usage().orElseThrow();
        assertEquals(stories.tokenize(PROMPT).length, u.promptTokens());
        assertEquals(40, u.completionTokens());
        assertEquals(u.promptTokens() + u.completionTokens(), u.totalTokens());
    }

    @Test
    void streamingCompletionEqualsBlocking() {
        CompletionCreateParams p = CompletionCreateParams.builder().model("stories260K").prompt("Lily and Tom").maxTokens(30)
                .temperature(0).build();
        String blocking = client.completions().create(p).choices().getFirst().text();
        StringBuilder streamed = new StringBuilder();
        String[] finish = {null};
        try (StreamResponse<Completion> s = client.completions().createStreaming(p)) {
            s.stream().forEach(c -> c.choices().forEach(ch -> {
                streamed.append(ch.text());
                ch._finishReason().asKnown().ifPresent(f -> finish[0] = f.asString());
            }));
        }
        assertEquals(blocking, streamed.toString());
        assertEquals("length", finish[0]);
    }

    @Test
    void stopSequencesEndTheText() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model("stories260K").prompt(PROMPT)
                .maxTokens(100).temperature(0).stop(".").build());
        GenerationResult alone = stories.generate(PROMPT, GenerateOptions.greedy(100).withStop(List.of(".")));
        assertEquals(alone.text(), c.choices().getFirst().text());
        assertFalse(c.choices().getFirst().text().contains("."));
        assertEquals("stop", c.choices().getFirst().finishReason().asString());

        ChatCompletion chat = client.chat().completions().create(chat("stories260K").addUserMessage("Tell me a story")
                .maxCompletionTokens(60).temperature(0.0).stopOfStrings(List.of(",", "\n")).build());
        String content = chat.choices().getFirst().message().content().orElse("");
        assertFalse(content.contains(",") || content.contains("\n"), content);
    }

    @Test
    void chatBlockingAndStreamingAgree() {
        ChatCompletionCreateParams p = chat("stories260K").addSystemMessage("You tell stories.").addUserMessage("A story about a cat, please.")
                .maxCompletionTokens(32).temperature(0.0)
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        ChatCompletionCreateParams blockingParams = p.toBuilder().streamOptions(java.util.Optional.empty()).build();
        ChatCompletion blocking = client.chat().completions().create(blockingParams);
        String content = blocking.choices().getFirst().message().content().orElseThrow();
        assertFalse(content.isEmpty());
        assertTrue(blocking.id().startsWith("chatcmpl-"));
        assertEquals("length", blocking.choices().getFirst().finishReason().asString());
        assertEquals(32, blocking.usage().orElseThrow().completionTokens());

        StringBuilder streamed = new StringBuilder();
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(p)) {
            s.stream().forEach(c -> {
                chunks.add(c);
                c.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append));
            });
        }
        assertEquals(content, streamed.toString());
        assertEquals("assistant", chunks.getFirst().choices().getFirst().delta().role().orElseThrow().asString());
        ChatCompletionChunk last = chunks.getLast();
        assertTrue(last.choices().isEmpty(), "the usage chunk has no choices");
        assertEquals(blocking.usage().orElseThrow().completionTokens(), last.usage().orElseThrow().completionTokens());
        assertEquals("length", chunks.get(chunks.size() - 2).choices().getFirst().finishReason().orElseThrow().asString());
    }

    @Test
    void sameSeedSameText() {
        CompletionCreateParams.Builder p = CompletionCreateParams.builder().model("stories260K").prompt(PROMPT).maxTokens(40).temperature(1.0);
        String a = client.completions().create(p.seed(42).build()).choices().getFirst().text();
        String b = client.completions().create(p.seed(42).build()).choices().getFirst().text();
        String c = client.completions().create(p.seed(4242).build()).choices().getFirst().text();
        assertEquals(a, b);
        assertNotEquals(a, c);
        ChatCompletionCreateParams q = chat("stories260K").addUserMessage("Hello").maxCompletionTokens(30).temperature(0.9).seed(7).build();
        assertEquals(client.chat().completions().create(q).choices().getFirst().message().content(),
                client.chat().completions().create(q).choices().getFirst().message().content());
    }

    @Test
    void logprobs() {
        ChatCompletion c = client.chat().completions().create(chat("stories260K").addUserMessage("Hi").maxCompletionTokens(8)
                .temperature(0.0).logprobs(true).topLogprobs(3).build());
        var content = c.choices().getFirst().logprobs().orElseThrow().content().orElseThrow();
        assertEquals(8, content.size());
        for (var lp : content) {
            assertEquals(3, lp.topLogprobs().size());
            assertTrue(lp.logprob() <= 0);
            assertEquals(lp.topLogprobs().getFirst().logprob(), lp.logprob(), 1e-6, "greedy picks the most likely token");
        }
    }

    @Test
    void jsonObjectResponseFormat() throws Exception {
        ChatCompletion c = client.chat().completions().create(chat("stories260K").addUserMessage("Answer in JSON.")
                .maxCompletionTokens(120).temperature(0.0).responseFormat(ResponseFormatJsonObject.builder().build()).build());
        String text = c.choices().getFirst().message().content().orElseThrow();
        var state = new JsonConstraint.JsonState();
        assertTrue(state.acceptAll(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)), "a JSON prefix: " + text);
        if (c.choices().getFirst().finishReason().asString().equals("stop")) {
            assertTrue(new ObjectMapper().readTree(text).isObject(), text);
        }
        assertTrue(text.startsWith("{"), text);
    }

    static ChatCompletionCreateParams.Builder weatherRequest() {
        FunctionParameters params = FunctionParameters.builder()
                .putAdditionalProperty("type", JsonValue.from("object"))
                .putAdditionalProperty("properties", JsonValue.from(Map.of(
                        "city", Map.of("type", "string", "description", "The city"),
                        "unit", Map.of("type", "string", "enum", List.of("celsius", "fahrenheit")))))
                .putAdditionalProperty("required", JsonValue.from(List.of("city")))
                .build();
        return chat("stories-qwen3").addUserMessage("What's the weather in Paris?").maxCompletionTokens(100).temperature(0.0)
                .addFunctionTool(FunctionDefinition.builder().name("get_weather").description("Get the current weather in a city")
                        .parameters(params).build());
    }

    @Test
    void toolCallRoundTrip() throws Exception {
        ChatCompletion first = toolClient.chat().completions().create(weatherRequest().build());
        var choice = first.choices().getFirst();
        assertEquals("tool_calls", choice.finishReason().asString());
        List<?> calls = choice.message().toolCalls().orElseThrow();
        assertEquals(1, calls.size());
        ChatCompletionMessageFunctionToolCall call = choice.message().toolCalls().get().getFirst().asFunction();
        assertEquals("get_weather", call.function().name());
        JsonNode args = new ObjectMapper().readTree(call.function().arguments());
        assertEquals("Paris", args.get("city").asText());
        assertTrue(call.id().startsWith("call_"));
        // The template put the tool's description into the prompt.
        assertTrue(prompts.getLast().contains("\"name\": \"get_weather\"") && prompts.getLast().contains("<tools>"), prompts.getLast());

        ChatCompletion second = toolClient.chat().completions().create(weatherRequest()
                .addMessage(choice.message())
                .addMessage(ChatCompletionToolMessageParam.builder().toolCallId(call.id()).content("{\"temperature\": 21}").build())
                .build());
        assertEquals("stop", second.choices().getFirst().finishReason().asString());
        assertEquals("The weather in Paris is 21 degrees and clear.", second.choices().getFirst().message().content().orElseThrow());
        String prompt2 = prompts.getLast();
        assertTrue(prompt2.contains("<tool_response>\n{\"temperature\": 21}\n</tool_response>"), prompt2);
        assertTrue(prompt2.contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}"), prompt2);
    }

    @Test
    void toolCallsStreamAsDeltas() {
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = toolClient.chat().completions().createStreaming(weatherRequest().build())) {
            s.stream().forEach(chunks::add);
        }
        var deltas = chunks.stream().flatMap(c -> c.choices().stream()).flatMap(ch -> ch.delta().toolCalls().orElse(List.of()).stream()).toList();
        assertEquals(1, deltas.size());
        assertEquals("get_weather", deltas.getFirst().function().orElseThrow().name().orElseThrow());
        assertTrue(deltas.getFirst().id().orElseThrow().startsWith("call_"));
        assertEquals(0, deltas.getFirst().index());
        String content = chunks.stream().flatMap(c -> c.choices().stream()).map(ch -> ch.delta().content().orElse("")).reduce("", String::concat);
        assertEquals("", content, "the tool call markup is not content");
        assertEquals("tool_calls", chunks.getLast().choices().getFirst().finishReason().orElseThrow().asString());
    }

    @Test
    void errorsReachTheSdkAsExceptions() {
        NotFoundException nf = assertThrows(NotFoundException.class, () -> client.chat().completions()
                .create(chat("gpt-4o").addUserMessage("hi").build()));
        assertEquals("model_not_found", nf.code().orElseThrow());
        BadRequestException bad = assertThrows(BadRequestException.class, () -> client.chat().completions()
                .create(chat("stories260K").addUserMessage("hi").maxCompletionTokens(-5).build()));
        assertEquals("max_completion_tokens", bad.param().orElseThrow());
        assertEquals("invalid_request_error", bad.type().orElseThrow());
        BadRequestException n = assertThrows(BadRequestException.class, () -> client.chat().completions()
                .create(chat("stories260K").addUserMessage("hi").n(3).build()));
        assertEquals("n", n.param().orElseThrow());
    }

    @Test
    void apiKeyIsRequiredExceptForHealth() throws Exception {
        OpenAIClient wrong = client(keyed, "sk-wrong"), right = client(keyed, "sk-secret");
        try {
            UnauthorizedException e = assertThrows(UnauthorizedException.class, () -> wrong.models().list());
            assertEquals("invalid_api_key", e.code().orElseThrow());
            assertEquals("stories260K", right.models().list().data().getFirst().id());
            Completion c = right.completions().create(CompletionCreateParams.builder().model("stories260K").prompt("Hi").maxTokens(3).build());
            assertEquals(3, c.usage().orElseThrow().completionTokens());
        } finally {
            wrong.close();
            right.close();
        }
        HttpClient http = HttpClient.newHttpClient();
        HttpResponse<String> health = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + keyed.port() + "/health")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, health.statusCode());
        HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + keyed.port() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(401, metrics.statusCode());
    }
}
