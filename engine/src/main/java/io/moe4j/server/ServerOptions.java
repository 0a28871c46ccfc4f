package io.moe4j.server;

import io.moe4j.kernels.KvType;

/**
 * How {@link OpenAiServer} serves a model.
 *
 * @param host          address to bind (127.0.0.1 unless told otherwise)
 * @param port          TCP port; 0 picks a free one
 * @param parallel      sequences that decode together (continuous batching slots)
 * @param contextSize   tokens of context per sequence (0: the model's default)
 * @param queueCapacity requests that may wait for a slot; beyond, 429 with Retry-After
 * @param apiKey        when not null, every endpoint but /health requires {@code Authorization: Bearer <key>}
 * @param modelId       the model's name in the API (null: the model file's name without .gguf)
 * @param kvType        storage of keys and values
 * @param promptCache   reuse the keys and values of a finished sequence for a new request sharing its prefix
 * @param chatTemplate  a Jinja chat template replacing the model's own (null: the model's, or the fallback)
 * @param maxBodyBytes  larger request bodies are refused with 413
 */
public record ServerOptions(String host, int port, int parallel, int contextSize, int queueCapacity, String apiKey,
                            String modelId, KvType kvType, boolean promptCache, String chatTemplate,
                            int maxBodyBytes) {

    public static final String DEFAULT_HOST = "127.0.0.1";

    public ServerOptions {
        if (host == null || host.isBlank()) throw new IllegalArgumentException("host must not be empty");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
        if (parallel < 1 || parallel > 256) throw new IllegalArgumentException("parallel must be in [1, 256], got " + parallel);
        if (contextSize < 0) throw new IllegalArgumentException("context size must be >= 0, got " + contextSize);
        if (queueCapacity < 0) throw new IllegalArgumentException("queue size must be >= 0, got " + queueCapacity);
        if (apiKey != null && apiKey.isBlank()) throw new IllegalArgumentException("the API key must not be blank");
        if (maxBodyBytes < 1024) throw new IllegalArgumentException("max body must be at least 1024 bytes");
        if (kvType == null) kvType = KvType.F16;
    }

    public static ServerOptions defaults() {
        return new ServerOptions(DEFAULT_HOST, 8080, 4, 0, 64, null, null, KvType.F16, true, null, 16 << 20);
    }

    public ServerOptions withHost(String h) {
        return new ServerOptions(h, port, parallel, contextSize, queueCapacity, apiKey, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withPort(int p) {
        return new ServerOptions(host, p, parallel, contextSize, queueCapacity, apiKey, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withParallel(int n) {
        return new ServerOptions(host, port, n, contextSize, queueCapacity, apiKey, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withContextSize(int n) {
        return new ServerOptions(host, port, parallel, n, queueCapacity, apiKey, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withQueueCapacity(int n) {
        return new ServerOptions(host, port, parallel, contextSize, n, apiKey, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withApiKey(String k) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, k, modelId, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withModelId(String id) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, apiKey, id, kvType, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withKvType(KvType t) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, apiKey, modelId, t, promptCache, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withPromptCache(boolean on) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, apiKey, modelId, kvType, on, chatTemplate, maxBodyBytes);
    }

    public ServerOptions withChatTemplate(String t) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, apiKey, modelId, kvType, promptCache, t, maxBodyBytes);
    }

    public ServerOptions withMaxBodyBytes(int n) {
        return new ServerOptions(host, port, parallel, contextSize, queueCapacity, apiKey, modelId, kvType, promptCache, chatTemplate, n);
    }
}
