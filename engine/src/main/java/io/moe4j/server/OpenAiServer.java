package io.moe4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.moe4j.Model;
import io.moe4j.batch.BatchHandle;
import io.moe4j.batch.BatchListener;
import io.moe4j.batch.BatchRequest;
import io.moe4j.batch.BatchResult;
import io.moe4j.batch.BatchScheduler;
import io.moe4j.batch.QueueFullException;
import io.moe4j.batch.TokenEvent;
import io.moe4j.batch.TokenSampler;
import io.moe4j.generate.StopReason;
import io.moe4j.model.KvBudgetExceededException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A local OpenAI-compatible HTTP endpoint for one model, on the JDK's own HTTP server with a virtual thread per
 * request: {@code GET /v1/models}, {@code POST /v1/chat/completions}, {@code POST /v1/completions},
 * {@code GET /health}, {@code GET /metrics}. Generation goes through a {@link BatchScheduler} (continuous
 * batching); this class knows only the generate API, nothing of kernels.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(OpenAiServer.class.getName());
    static final String FINGERPRINT = "fp_moe4j";

    private final ServerOptions options;
    private final HttpServer http;
    private final ExecutorService executor;
    final ObjectMapper mapper;
    private final Metrics metrics = new Metrics();
    private final boolean ownsModel;
    private final CountDownLatch loaded = new CountDownLatch(1);
    private volatile Engine engine;
    private volatile String loadError;
    private volatile SamplerHook samplerHook;
    private volatile java.util.function.Consumer<String> requestLog;
    private volatile boolean closed;
    private final SecureRandom random = new SecureRandom();

    /** What serves requests once the model is loaded. */
    record Engine(Model model, BatchScheduler scheduler, ChatFormat chat, String modelId, int contextSize, long created) {
    }

    /** For tests: replaces the token choice of every request (e.g. to script what the "model" says). */
    public interface SamplerHook {
        TokenSampler sampler(String promptText, TokenSampler standard);
    }

    private OpenAiServer(ServerOptions options, boolean ownsModel) throws IOException {
        this.options = options;
        this.ownsModel = ownsModel;
        this.mapper = JsonMapper.builder()
                .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .build();
        mapper.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(200).build());
        this.executor = Executors.newVirtualThreadPerTaskExecutor();
        this.http = HttpServer.create(new InetSocketAddress(options.host(), options.port()), 128);
        http.setExecutor(executor);
        http.createContext("/", this::handle);
        http.start();
    }

    /** Serves an already loaded model (which stays the caller's to close). */
    public static OpenAiServer start(ServerOptions options, Model model) throws IOException {
        OpenAiServer s = new OpenAiServer(options, false);
        try {
            s.install(model);
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Binds at once and loads the model in the background: until it is loaded /health says "loading" and the API
     * answers 503. The server owns the model and closes it.
     */
    public static OpenAiServer startLoading(ServerOptions options, Callable<Model> loader) throws IOException {
        OpenAiServer s = new OpenAiServer(options, true);
        Thread.ofVirtual().name("moe4j-load").start(() -> {
            try {
                Model m = loader.call();
                if (s.closed) {
                    m.close();
                    return;
                }
                s.install(m);
            } catch (Throwable e) {
                // Reported by /health and loadError(); the caller decides whether to log it or stop.
                s.loadError = e.getMessage() == null ? e.toString() : e.getMessage();
            } finally {
                s.loaded.countDown();
            }
        });
        return s;
    }

    private void install(Model model) {
        int ctx = options.contextSize() > 0 ? options.contextSize() : model.defaultContextSize(options.kvType());
        String id = options.modelId() != null ? options.modelId() : defaultModelId(model);
        ChatFormat chat = ChatFormat.of(model, options.chatTemplate());
        BatchScheduler scheduler = new BatchScheduler(model.transformer(), model.tokenizer(), options.parallel(), ctx,
                options.kvType(), options.queueCapacity(), options.promptCache(),
                model.prefillBatch() > 0 ? model.prefillBatch() : BatchScheduler.DEFAULT_PREFILL_CHUNK, model.kvPool());
        engine = new Engine(model, scheduler, chat, id, ctx, System.currentTimeMillis() / 1000);
        loaded.countDown();
    }

    static String defaultModelId(Model model) {
        String f = model.path().getFileName().toString();
        return f.endsWith(".gguf") ? f.substring(0, f.length() - 5) : f;
    }

    /** Why the model could not be loaded, or null (while loading, and once it serves). */
    public String loadError() {
        return loadError;
    }

    /** Waits until the model is loaded (or failed to load); true when it serves. */
    public boolean awaitReady(long timeout, TimeUnit unit) throws InterruptedException {
        loaded.await(timeout, unit);
        return engine != null;
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** {@code http://host:port/v1}, what OpenAI clients take as their base URL. */
    public URI baseUrl() {
        String host = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
        return URI.create("http://" + host + ":" + port() + "/v1");
    }

    /** The model's name in the API ({@code "model"} of requests), or null while loading. */
    public String modelId() {
        Engine e = engine;
        return e == null ? null : e.modelId();
    }

    /** The batching scheduler (null while loading): statistics, prompt cache. */
    public BatchScheduler scheduler() {
        Engine e = engine;
        return e == null ? null : e.scheduler();
    }

    public void setSamplerHook(SamplerHook hook) {
        this.samplerHook = hook;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        http.stop(0);
        Engine e = engine;
        if (e != null) {
            e.scheduler().close();
            if (ownsModel) e.model().close();
        }
        executor.shutdownNow();
    }

    // ---- routing ---------------------------------------------------------------------------------------------

    private void handle(HttpExchange ex) {
        String endpoint = "other";
        Outcome outcome = new Outcome();
        long started = System.nanoTime();
        try {
            String path = ex.getRequestURI().getPath();
            String method = ex.getRequestMethod();
            if (path.length() > 1 && path.endsWith("/")) path = path.substring(0, path.length() - 1);
            String p = path.startsWith("/v1/") ? path.substring(3) : path;
            endpoint = switch (p) {
                case "/health", "/metrics", "/models", "/chat/completions", "/completions" -> p.substring(1);
                default -> p.startsWith("/models/") ? "models" : "other";
            };
            try {
                if (p.equals("/health")) {
                    requireMethod(method, "GET", path);
                    health(ex, outcome);
                    return;
                }
                checkAuth(ex);
                switch (p) {
                    case "/metrics" -> {
                        requireMethod(method, "GET", path);
                        Engine e = engine;
                        byte[] body = metrics.render(e == null ? null : e.scheduler().stats(),
                                e == null ? null : e.scheduler().kvPool().stats(), e == null ? "" : e.modelId(), e != null)
                                .getBytes(StandardCharsets.UTF_8);
                        ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                        send(ex, 200, body, outcome);
                    }
                    case "/models" -> {
                        requireMethod(method, "GET", path);
                        Engine e = ready();
                        ObjectNode list = mapper.createObjectNode().put("object", "list");
                        list.putArray("data").add(modelJson(e));
                        sendJson(ex, 200, list, outcome);
                    }
                    case "/chat/completions" -> {
                        requireMethod(method, "POST", path);
                        chat(ex, ready(), readJson(ex), outcome);
                    }
                    case "/completions" -> {
                        requireMethod(method, "POST", path);
                        completion(ex, ready(), readJson(ex), outcome);
                    }
                    default -> {
                        if (p.startsWith("/models/")) {
                            requireMethod(method, "GET", path);
                            Engine e = ready();
                            String id = java.net.URLDecoder.decode(p.substring("/models/".length()), StandardCharsets.UTF_8);
                            if (!knownModel(e, id)) throw modelNotFound(id);
                            sendJson(ex, 200, modelJson(e), outcome);
                        } else {
                            throw new ApiException(404, "invalid_request_error", null, "unknown_url",
                                    "Invalid URL (" + method + " " + path + ")");
                        }
                    }
                }
            } catch (ApiException e) {
                sendError(ex, e, outcome);
            } catch (Throwable t) {
                LOG.log(Level.WARNING, "request failed", t);
                sendError(ex, new ApiException(500, "server_error", null, null,
                        "The server had an error while processing your request."), outcome);
            }
        } finally {
            metrics.request(endpoint, outcome.status);
            ex.close();
            logRequest(ex, outcome, System.nanoTime() - started);
        }
    }

    /** What became of one request: the status sent, and for a completion its result (for metrics and the log). */
    private static final class Outcome {
        int status = 500;
        BatchResult result;
    }

    /**
     * Where each finished request is logged, one line each (null: not logged): the client, method and path, the
     * status, the time to the last byte and, for completions, the token counts.
     */
    public void setRequestLog(java.util.function.Consumer<String> log) {
        this.requestLog = log;
    }

    private void logRequest(HttpExchange ex, Outcome outcome, long nanos) {
        java.util.function.Consumer<String> log = requestLog;
        if (log == null) return;
        StringBuilder line = new StringBuilder();
        var remote = ex.getRemoteAddress();
        line.append(remote == null ? "-" : remote.getAddress().getHostAddress()).append(' ')
                .append(ex.getRequestMethod()).append(' ').append(ex.getRequestURI().getRawPath()).append(' ')
                .append(outcome.status).append(String.format(" %.3f s", nanos / 1e9));
        BatchResult r = outcome.result;
        if (r != null) {
            line.append(" | prompt ").append(r.promptTokens()).append(" tokens (").append(r.cachedTokens())
                    .append(" cached), completion ").append(r.completionTokens()).append(" tokens, ")
                    .append(r.stopReason().name().toLowerCase());
        }
        try {
            log.accept(line.toString());
        } catch (RuntimeException ignored) {
            // A failing log must not fail the request, which has been answered already.
        }
    }

    private static void requireMethod(String method, String expected, String path) {
        if (!method.equals(expected)) {
            throw new ApiException(405, "invalid_request_error", null, "method_not_allowed",
                    "Invalid method for URL (" + method + " " + path + "): use " + expected + ".");
        }
    }

    private void health(HttpExchange ex, Outcome outcome) throws IOException {
        ObjectNode o = mapper.createObjectNode();
        if (engine != null) {
            o.put("status", "ok");
            sendJson(ex, 200, o, outcome);
        } else if (loadError != null) {
            o.put("status", "error").put("message", "the model could not be loaded: " + loadError);
            sendJson(ex, 500, o, outcome);
        } else {
            o.put("status", "loading");
            ex.getResponseHeaders().set("Retry-After", "1");
            sendJson(ex, 503, o, outcome);
        }
    }

    private void checkAuth(HttpExchange ex) {
        String key = options.apiKey();
        if (key == null) return;
        String h = ex.getRequestHeaders().getFirst("Authorization");
        if (h == null || h.isBlank()) {
            throw new ApiException(401, "invalid_request_error", null, "missing_api_key",
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
        }
        String given = h.regionMatches(true, 0, "Bearer ", 0, 7) ? h.substring(7).trim() : "";
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), key.getBytes(StandardCharsets.UTF_8))) {
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key", "Incorrect API key provided.");
        }
    }

    private Engine ready() {
        Engine e = engine;
        if (e != null) return e;
        if (loadError != null) {
            throw new ApiException(503, "unavailable_error", null, "model_load_failed", "The model could not be loaded: " + loadError);
        }
        throw new ApiException(503, "unavailable_error", null, "model_loading", "The model is loading; retry in a moment.");
    }

    private ObjectNode modelJson(Engine e) {
        return mapper.createObjectNode().put("id", e.modelId()).put("object", "model").put("created", e.created())
                .put("owned_by", "moe4j");
    }

    private static boolean knownModel(Engine e, String id) {
        return id.equals(e.modelId()) || id.equals(e.model().path().getFileName().toString());
    }

    private static ApiException modelNotFound(String id) {
        return new ApiException(404, "invalid_request_error", "model", "model_not_found",
                "The model `" + id + "` does not exist or you do not have access to it.");
    }

    private JsonNode readJson(HttpExchange ex) throws IOException {
        byte[] body;
        try (InputStream in = ex.getRequestBody()) {
            body = in.readNBytes(options.maxBodyBytes() + 1);
        }
        if (body.length > options.maxBodyBytes()) {
            throw new ApiException(413, "invalid_request_error", null, "request_too_large",
                    "The request body is larger than " + options.maxBodyBytes() + " bytes.");
        }
        if (body.length == 0) {
            throw ApiException.invalid(null, "invalid_json", "We could not parse the JSON body of your request: the body is empty. "
                    + "(HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)");
        }
        try {
            JsonNode n = mapper.readTree(body);
            if (n == null || !n.isObject()) {
                throw ApiException.invalid(null, "invalid_json", "We could not parse the JSON body of your request: expected a JSON object, got "
                        + Fields.describe(n) + ".");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "invalid_json", "We could not parse the JSON body of your request. "
                    + "(HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                    + "but what was sent was not valid JSON.) " + jsonProblem(e));
        }
    }

    /**
     * Jackson's description of a parse error in the user's terms: what was wrong and where (line and column), without
     * its internal source descriptions ({@code [Source: REDACTED ...]}).
     */
    static String jsonProblem(JsonProcessingException e) {
        String m = e.getOriginalMessage() == null ? "invalid JSON" : e.getOriginalMessage();
        m = m.replaceAll("\\[Source: [^\\]]*?; line: (\\d+), column: (\\d+)\\]", "line $1, column $2");
        var at = e.getLocation();
        if (at != null && at.getLineNr() > 0) m += " (at line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        return m;
    }

    // ---- chat completions --------------------------------------------------------------------------------------

    private void chat(HttpExchange ex, Engine e, JsonNode body, Outcome outcome) throws IOException {
        Requests.Chat req = Requests.chat(body, e.contextSize(), mapper);
        if (!knownModel(e, req.model())) throw modelNotFound(req.model());
        boolean toolsOn = req.toolChoice().mode() != Requests.ToolChoiceMode.NONE;
        ChatFormat.Rendered rendered = e.chat().render(req, mapper);
        int[] prompt = e.model().tokenizer().encode(rendered.prompt(), e.chat().addBos(), true);
        List<String> stops = new ArrayList<>(req.gen().stop());
        stops.addAll(rendered.extraStops());
        Submitted sub = submit(e, rendered.prompt(), prompt, req.gen(), stops, rendered.renderSpecial());
        ChatOutput parser = e.chat().output(toolsOn, rendered.prefill());
        String id = "chatcmpl-" + randomId();
        long created = System.currentTimeMillis() / 1000;
        if (req.gen().stream()) chatStream(ex, e, req, sub, parser, id, created, outcome);
        else chatBlocking(ex, e, req, sub, parser, id, created, outcome);
    }

    private void chatBlocking(HttpExchange ex, Engine e, Requests.Chat req, Submitted sub, ChatOutput parser, String id,
                              long created, Outcome outcome) throws IOException {
        StringBuilder content = new StringBuilder(), reasoning = new StringBuilder();
        List<ChatOutput.Call> calls = new ArrayList<>();
        ArrayNode lp = req.gen().topLogprobs() >= 0 ? mapper.createArrayNode() : null;
        Consumer<List<ChatOutput.Part>> collect = parts -> {
            for (ChatOutput.Part p : parts) {
                switch (p) {
                    case ChatOutput.Content c -> content.append(c.text());
                    case ChatOutput.Reasoning r -> reasoning.append(r.text());
                    case ChatOutput.Call c -> calls.add(c);
                }
            }
        };
        BatchResult result = sub.drain(ev -> {
            collect.accept(parser.accept(ev.text()));
            if (lp != null && ev.id() >= 0) lp.add(chatLogprob(e, ev));
        });
        outcome.result = result;
        collect.accept(parser.finish());
        ObjectNode root = chatEnvelope(id, created, e, "chat.completion");
        ObjectNode choice = root.putArray("choices").addObject().put("index", 0);
        ObjectNode msg = choice.putObject("message").put("role", "assistant");
        if (content.isEmpty() && !calls.isEmpty()) msg.putNull("content");
        else msg.put("content", content.toString());
        if (!reasoning.isEmpty()) msg.put("reasoning_content", reasoning.toString());
        msg.putNull("refusal");
        if (!calls.isEmpty()) {
            ArrayNode tc = msg.putArray("tool_calls");
            for (ChatOutput.Call c : calls) {
                ObjectNode t = tc.addObject().put("id", e.chat().newToolCallId()).put("type", "function");
                t.putObject("function").put("name", c.name()).put("arguments", c.arguments());
            }
        }
        msg.putArray("annotations");
        if (lp == null) choice.putNull("logprobs");
        else {
            ObjectNode l = choice.putObject("logprobs");
            l.set("content", lp);
            l.putNull("refusal");
        }
        choice.put("finish_reason", calls.isEmpty() ? finishReason(result.stopReason()) : "tool_calls");
        root.set("usage", usage(result));
        sendJson(ex, 200, root, outcome);
    }

    private void chatStream(HttpExchange ex, Engine e, Requests.Chat req, Submitted sub, ChatOutput parser, String id,
                            long created, Outcome outcome) throws IOException {
        Sse sse = new Sse(ex, sub.handle, outcome);
        boolean usage = req.gen().includeUsage();
        boolean logprobs = req.gen().topLogprobs() >= 0;
        ObjectNode first = chunk(id, created, e, usage);
        ObjectNode c0 = ((ArrayNode) first.get("choices")).addObject().put("index", 0);
        c0.putObject("delta").put("role", "assistant").put("content", "").putNull("refusal");
        c0.putNull("logprobs");
        c0.putNull("finish_reason");
        if (!sse.send(first) || !sse.flush()) return;
        int[] toolIndex = {0};
        boolean[] sawCalls = {false};
        ArrayNode[] pendingLp = {null};
        BatchResult result;
        try {
            result = sub.drainStreaming(ev -> {
                if (logprobs && ev.id() >= 0) {
                    if (pendingLp[0] == null) pendingLp[0] = mapper.createArrayNode();
                    pendingLp[0].add(chatLogprob(e, ev));
                }
                for (ChatOutput.Part p : parser.accept(ev.text())) {
                    if (!sse.send(partChunk(id, created, e, usage, p, toolIndex, sawCalls, pendingLp))) return false;
                }
                return true;
            }, sse);
        } catch (ApiException err) {
            sse.sendError(errorJson(err));
            return;
        }
        if (result == null) return; // the client went away
        outcome.result = result;
        for (ChatOutput.Part p : parser.finish()) {
            if (!sse.send(partChunk(id, created, e, usage, p, toolIndex, sawCalls, pendingLp))) return;
        }
        ObjectNode last = chunk(id, created, e, usage);
        ObjectNode cl = ((ArrayNode) last.get("choices")).addObject().put("index", 0);
        cl.putObject("delta");
        if (pendingLp[0] != null) cl.putObject("logprobs").<ObjectNode>set("content", pendingLp[0]).putNull("refusal");
        else cl.putNull("logprobs");
        cl.put("finish_reason", sawCalls[0] ? "tool_calls" : finishReason(result.stopReason()));
        if (!sse.send(last)) return;
        if (usage) {
            ObjectNode u = chunk(id, created, e, false);
            u.set("usage", usage(result));
            if (!sse.send(u)) return;
        }
        sse.done();
    }

    private ObjectNode partChunk(String id, long created, Engine e, boolean usage, ChatOutput.Part p, int[] toolIndex,
                                 boolean[] sawCalls, ArrayNode[] pendingLp) {
        ObjectNode ch = chunk(id, created, e, usage);
        ObjectNode c = ((ArrayNode) ch.get("choices")).addObject().put("index", 0);
        ObjectNode delta = c.putObject("delta");
        switch (p) {
            case ChatOutput.Content t -> delta.put("content", t.text());
            case ChatOutput.Reasoning r -> delta.put("reasoning_content", r.text());
            case ChatOutput.Call call -> {
                sawCalls[0] = true;
                ObjectNode t = delta.putArray("tool_calls").addObject().put("index", toolIndex[0]++)
                        .put("id", e.chat().newToolCallId()).put("type", "function");
                t.putObject("function").put("name", call.name()).put("arguments", call.arguments());
            }
        }
        if (pendingLp[0] != null) {
            c.putObject("logprobs").<ObjectNode>set("content", pendingLp[0]).putNull("refusal");
            pendingLp[0] = null;
        } else {
            c.putNull("logprobs");
        }
        c.putNull("finish_reason");
        return ch;
    }

    private ObjectNode chatEnvelope(String id, long created, Engine e, String object) {
        return mapper.createObjectNode().put("id", id).put("object", object).put("created", created)
                .put("model", e.modelId()).put("system_fingerprint", FINGERPRINT);
    }

    private ObjectNode chunk(String id, long created, Engine e, boolean withUsageNull) {
        ObjectNode o = chatEnvelope(id, created, e, "chat.completion.chunk");
        o.putArray("choices");
        if (withUsageNull) o.putNull("usage");
        return o;
    }

    private ObjectNode chatLogprob(Engine e, TokenEvent ev) {
        ObjectNode o = tokenLogprob(e, ev.id(), ev.logprob());
        ArrayNode top = o.putArray("top_logprobs");
        for (int i = 0; i < ev.topIds().length; i++) top.add(tokenLogprob(e, ev.topIds()[i], ev.topLogprobs()[i]));
        return o;
    }

    private ObjectNode tokenLogprob(Engine e, int tokenId, float logprob) {
        byte[] bytes = e.model().tokenizer().tokenBytes(tokenId);
        ObjectNode o = mapper.createObjectNode().put("token", new String(bytes, StandardCharsets.UTF_8)).put("logprob", logprob);
        ArrayNode b = o.putArray("bytes");
        for (byte x : bytes) b.add(x & 0xFF);
        return o;
    }

    // ---- completions -----------------------------------------------------------------------------------------

    private void completion(HttpExchange ex, Engine e, JsonNode body, Outcome outcome) throws IOException {
        Requests.Completion req = Requests.completion(body, e.contextSize());
        if (!knownModel(e, req.model())) throw modelNotFound(req.model());
        int[] prompt;
        String promptText;
        if (req.promptTokens() != null) {
            prompt = req.promptTokens();
            int vocab = e.model().tokenizer().vocabSize();
            for (int i = 0; i < prompt.length; i++) {
                if (prompt[i] < 0 || prompt[i] >= vocab) {
                    throw ApiException.invalidValue("prompt", "Invalid 'prompt': token id " + prompt[i] + " is outside the vocabulary [0, " + vocab + ").");
                }
            }
            promptText = e.model().tokenizer().decode(prompt);
        } else {
            promptText = req.prompt();
            prompt = e.model().tokenize(promptText);
            if (prompt.length == 0) {
                throw ApiException.invalidValue("prompt", "Invalid 'prompt': the prompt is empty (no tokens).");
            }
        }
        Submitted sub = submit(e, promptText, prompt, req.gen(), req.gen().stop(), false);
        String id = "cmpl-" + randomId();
        long created = System.currentTimeMillis() / 1000;
        String echo = req.echo() ? promptText : "";
        if (req.gen().stream()) completionStream(ex, e, req, sub, id, created, echo, outcome);
        else completionBlocking(ex, e, req, sub, id, created, echo, outcome);
    }

    private void completionBlocking(HttpExchange ex, Engine e, Requests.Completion req, Submitted sub, String id, long created,
                                    String echo, Outcome outcome) throws IOException {
        StringBuilder text = new StringBuilder(echo);
        LegacyLogprobs lp = req.gen().topLogprobs() >= 0 ? new LegacyLogprobs(echo.length()) : null;
        BatchResult result = sub.drain(ev -> {
            if (lp != null && ev.id() >= 0) lp.add(e, ev, text.length());
            text.append(ev.text());
        });
        outcome.result = result;
        ObjectNode root = chatEnvelope(id, created, e, "text_completion");
        ObjectNode choice = root.putArray("choices").addObject().put("text", text.toString()).put("index", 0);
        if (lp == null) choice.putNull("logprobs");
        else choice.set("logprobs", lp.json());
        choice.put("finish_reason", finishReason(result.stopReason()));
        root.set("usage", usage(result));
        sendJson(ex, 200, root, outcome);
    }

    private void completionStream(HttpExchange ex, Engine e, Requests.Completion req, Submitted sub, String id, long created,
                                  String echo, Outcome outcome) throws IOException {
        Sse sse = new Sse(ex, sub.handle, outcome);
        boolean usage = req.gen().includeUsage();
        boolean logprobs = req.gen().topLogprobs() >= 0;
        int[] offset = {0};
        if (!echo.isEmpty()) {
            if (!sse.send(textChunk(id, created, e, usage, echo, null, null))) return;
            offset[0] = echo.length();
        }
        BatchResult result;
        try {
            result = sub.drainStreaming(ev -> {
                if (ev.text().isEmpty() && !logprobs) return true;
                LegacyLogprobs lp = null;
                if (logprobs && ev.id() >= 0) {
                    lp = new LegacyLogprobs(0);
                    lp.add(e, ev, offset[0]);
                }
                offset[0] += ev.text().length();
                return sse.send(textChunk(id, created, e, usage, ev.text(), lp, null));
            }, sse);
        } catch (ApiException err) {
            sse.sendError(errorJson(err));
            return;
        }
        if (result == null) return;
        outcome.result = result;
        if (!sse.send(textChunk(id, created, e, usage, "", null, finishReason(result.stopReason())))) return;
        if (usage) {
            ObjectNode u = chatEnvelope(id, created, e, "text_completion");
            u.putArray("choices");
            u.set("usage", usage(result));
            if (!sse.send(u)) return;
        }
        sse.done();
    }

    private ObjectNode textChunk(String id, long created, Engine e, boolean usage, String text, LegacyLogprobs lp, String finish) {
        ObjectNode o = chatEnvelope(id, created, e, "text_completion");
        ObjectNode c = o.putArray("choices").addObject().put("text", text).put("index", 0);
        if (lp == null) c.putNull("logprobs");
        else c.set("logprobs", lp.json());
        if (finish == null) c.putNull("finish_reason");
        else c.put("finish_reason", finish);
        if (usage) o.putNull("usage");
        return o;
    }

    /** The legacy completions log-probability object: tokens, token_logprobs, top_logprobs, text_offset. */
    private final class LegacyLogprobs {
        final ArrayNode tokens = mapper.createArrayNode(), logprobs = mapper.createArrayNode(),
                top = mapper.createArrayNode(), offsets = mapper.createArrayNode();

        LegacyLogprobs(int ignored) {
        }

        void add(Engine e, TokenEvent ev, int textOffset) {
            tokens.add(e.model().tokenizer().decode(new int[] {ev.id()}, false, true));
            logprobs.add(ev.logprob());
            ObjectNode t = top.addObject();
            for (int i = 0; i < ev.topIds().length; i++) {
                t.put(new String(e.model().tokenizer().tokenBytes(ev.topIds()[i]), StandardCharsets.UTF_8), ev.topLogprobs()[i]);
            }
            offsets.add(textOffset);
        }

        ObjectNode json() {
            ObjectNode o = mapper.createObjectNode();
            o.set("tokens", tokens);
            o.set("token_logprobs", logprobs);
            o.set("top_logprobs", top);
            o.set("text_offset", offsets);
            return o;
        }
    }

    // ---- generation ------------------------------------------------------------------------------------------

    static String finishReason(StopReason r) {
        return switch (r) {
            case MAX_TOKENS, CONTEXT_FULL -> "length";
            default -> "stop";
        };
    }

    private ObjectNode usage(BatchResult r) {
        ObjectNode u = mapper.createObjectNode().put("prompt_tokens", r.promptTokens()).put("completion_tokens", r.completionTokens())
                .put("total_tokens", r.promptTokens() + r.completionTokens());
        u.putObject("prompt_tokens_details").put("cached_tokens", r.cachedTokens());
        return u;
    }

    /** Builds the batch request, submits it, and returns the stream of its events. */
    private Submitted submit(Engine e, String promptText, int[] prompt, Requests.Generation g, List<String> stops, boolean renderSpecial) {
        if (prompt.length > e.contextSize()) {
            throw ApiException.invalid("messages", "context_length_exceeded", "This model's maximum context length is "
                    + e.contextSize() + " tokens. However, your messages resulted in " + prompt.length + " tokens. "
                    + "Please reduce the length of the messages.");
        }
        int max = g.maxTokens() != null ? g.maxTokens() : e.contextSize() - prompt.length;
        TokenSampler sampler = TokenSampler.of(g.sampling());
        if (g.json()) sampler = JsonConstraint.wrap(sampler, e.model().tokenizer());
        SamplerHook hook = samplerHook;
        if (hook != null) sampler = hook.sampler(promptText, sampler);
        BatchRequest br = new BatchRequest(prompt, max, stops, sampler, Math.max(-1, g.topLogprobs()), renderSpecial);
        Submitted sub = new Submitted();
        try {
            sub.handle = e.scheduler().submit(br, sub);
        } catch (QueueFullException qf) {
            metrics.rejectedBusy();
            throw new ApiException(429, "rate_limit_exceeded", null, "server_busy",
                    "The server is busy: all " + e.scheduler().parallel() + " sequence slots and the queue of "
                            + e.scheduler().queueCapacity() + " requests are taken. Retry after a moment.");
        } catch (IllegalArgumentException bad) {
            throw ApiException.invalidValue(null, bad.getMessage());
        }
        return sub;
    }

    /** The events of one generation, handed from the scheduler thread to the request's thread. */
    private final class Submitted implements BatchListener {
        final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        BatchHandle handle;

        @Override
        public void onToken(TokenEvent token) {
            if (token.id() >= 0) metrics.token();
            events.add(token);
        }

        @Override
        public void onFinish(BatchResult result) {
            events.add(result);
        }

        @Override
        public void onError(RuntimeException error) {
            events.add(error);
        }

        /** Waits for the end, passing every token to {@code onToken}. */
        BatchResult drain(Consumer<TokenEvent> onToken) {
            try {
                while (true) {
                    Object o = events.take();
                    if (o instanceof TokenEvent t) onToken.accept(t);
                    else if (o instanceof BatchResult r) return r;
                    else throw failure((RuntimeException) o);
                }
            } catch (InterruptedException ie) {
                handle.cancel();
                Thread.currentThread().interrupt();
                throw new ApiException(503, "server_error", null, "shutting_down", "The server is shutting down.");
            }
        }

        /**
         * Streams the events: {@code onToken} returns false when the client is gone. Returns null in that case
         * (the generation is cancelled), else the result. Writes keep-alive comments while nothing happens.
         */
        BatchResult drainStreaming(java.util.function.Predicate<TokenEvent> onToken, Sse sse) {
            try {
                while (true) {
                    Object o = events.poll(2, TimeUnit.SECONDS);
                    if (o == null) {
                        if (!sse.keepAlive()) return null;
                        continue;
                    }
                    // Everything already there goes out in one write: a slow client gets bigger, fewer packets.
                    do {
                        if (o instanceof TokenEvent t) {
                            if (!onToken.test(t)) return null;
                        } else if (o instanceof BatchResult r) {
                            return r;
                        } else {
                            throw failure((RuntimeException) o);
                        }
                        o = events.poll();
                    } while (o != null);
                    if (!sse.flush()) return null;
                }
            } catch (InterruptedException ie) {
                handle.cancel();
                Thread.currentThread().interrupt();
                return null;
            }
        }

        private ApiException failure(RuntimeException e) {
            if (e instanceof KvBudgetExceededException kv) {
                metrics.rejectedKvBudget();
                return new ApiException(429, "rate_limit_exceeded", null, "kv_budget_exhausted",
                        "The server has no KV cache memory for this request now: " + kv.getMessage() + ". Retry after a moment.");
            }
            LOG.log(Level.WARNING, "generation failed", e);
            return new ApiException(500, "server_error", null, null, "The server had an error while generating: " + e.getMessage());
        }
    }

    /** Server-sent events: {@code data: <json>} per chunk, {@code data: [DONE]} at the end. */
    private final class Sse {
        private final HttpExchange ex;
        private final BatchHandle handle;
        private OutputStream out;
        private boolean broken;

        Sse(HttpExchange ex, BatchHandle handle, Outcome outcome) throws IOException {
            this.ex = ex;
            this.handle = handle;
            ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
            ex.getResponseHeaders().set("Cache-Control", "no-cache");
            ex.getResponseHeaders().set("X-Accel-Buffering", "no");
            try {
                ex.sendResponseHeaders(200, 0);
                out = new java.io.BufferedOutputStream(ex.getResponseBody(), 16 << 10);
                outcome.status = 200;
            } catch (IOException e) {
                gone();
                throw e;
            }
        }

        /** Queues a chunk; it is written at the next {@link #flush()} (or when the buffer fills). */
        boolean send(JsonNode chunk) {
            try {
                return write(("data: " + mapper.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8), false);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        void sendError(JsonNode error) {
            send(error);
            flush();
        }

        boolean keepAlive() {
            return write(": keep-alive\n\n".getBytes(StandardCharsets.UTF_8), true);
        }

        boolean flush() {
            return write(new byte[0], true);
        }

        void done() {
            write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8), true);
        }

        private boolean write(byte[] b, boolean flush) {
            if (broken) return false;
            try {
                out.write(b);
                if (flush) out.flush();
                return true;
            } catch (IOException e) {
                gone();
                return false;
            }
        }

        private void gone() {
            broken = true;
            metrics.disconnect();
            handle.cancel();
        }
    }

    // ---- responses -------------------------------------------------------------------------------------------

    private String randomId() {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder sb = new StringBuilder(24);
        for (int i = 0; i < 24; i++) sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return sb.toString();
    }

    private ObjectNode errorJson(ApiException e) {
        ObjectNode root = mapper.createObjectNode();
        ObjectNode err = root.putObject("error");
        err.put("message", e.getMessage());
        err.put("type", e.type());
        if (e.param() == null) err.putNull("param");
        else err.put("param", e.param());
        if (e.code() == null) err.putNull("code");
        else err.put("code", e.code());
        return root;
    }

    private void sendError(HttpExchange ex, ApiException e, Outcome outcome) {
        if (e.status() == 429 || e.status() == 503) ex.getResponseHeaders().set("Retry-After", "1");
        try {
            sendJson(ex, e.status(), errorJson(e), outcome);
        } catch (IOException io) {
            // The client is gone; nothing to tell it.
        } catch (IllegalStateException headersAlreadySent) {
            // A streaming response had begun; the stream simply ends.
        }
    }

    private void sendJson(HttpExchange ex, int code, JsonNode body, Outcome outcome) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "application/json");
        send(ex, code, mapper.writeValueAsBytes(body), outcome);
    }

    private static void send(HttpExchange ex, int code, byte[] body, Outcome outcome) throws IOException {
        outcome.status = code;
        ex.sendResponseHeaders(code, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }
}
