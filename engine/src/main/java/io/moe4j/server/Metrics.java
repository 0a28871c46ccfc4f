package io.moe4j.server;

import io.moe4j.batch.BatchScheduler;
import io.moe4j.kernels.KvStore;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.KvPool;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Counters of the server, rendered in the Prometheus text format by {@code GET /metrics}. */
final class Metrics {
    private static final int WINDOW_SECONDS = 10;

    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>();
    private final LongAdder rejectedBusy = new LongAdder();
    private final LongAdder rejectedKvBudget = new LongAdder();
    private final LongAdder disconnects = new LongAdder();
    // Generated tokens per second, in a ring of one-second buckets (for a recent tokens/s gauge).
    private final long[] bucketSecond = new long[WINDOW_SECONDS + 2];
    private final long[] bucketTokens = new long[WINDOW_SECONDS + 2];
    private final long startNanos = System.nanoTime();

    void request(String endpoint, int status) {
        requests.computeIfAbsent(endpoint + "\u0000" + status, k -> new LongAdder()).increment();
    }

    void rejectedBusy() {
        rejectedBusy.increment();
    }

    void rejectedKvBudget() {
        rejectedKvBudget.increment();
    }

    void disconnect() {
        disconnects.increment();
    }

    /** One generated token (any request). */
    synchronized void token() {
        long sec = (System.nanoTime() - startNanos) / 1_000_000_000L;
        int i = (int) (sec % bucketSecond.length);
        if (bucketSecond[i] != sec) {
            bucketSecond[i] = sec;
            bucketTokens[i] = 0;
        }
        bucketTokens[i]++;
    }

    /** Generated tokens per second over the last complete seconds of the window. */
    synchronized double recentTokensPerSecond() {
        long now = (System.nanoTime() - startNanos) / 1_000_000_000L;
        long sum = 0;
        for (int i = 0; i < bucketSecond.length; i++) {
            long age = now - bucketSecond[i];
            if (age >= 1 && age <= WINDOW_SECONDS) sum += bucketTokens[i];
        }
        long span = Math.min(WINDOW_SECONDS, Math.max(1, now));
        return (double) sum / span;
    }

    /** @param kv the KV pool's pages (null: not loaded) */
    String render(BatchScheduler.Stats s, KvPool.Stats kv, String model, boolean ready) {
        StringBuilder b = new StringBuilder(4096);
        header(b, "moe4j_up", "gauge", "1 when the model is loaded and the server serves requests");
        b.append("moe4j_up ").append(ready ? 1 : 0).append('\n');
        header(b, "moe4j_requests_total", "counter", "HTTP requests by endpoint and status");
        Map<String, Long> sorted = new TreeMap<>();
        requests.forEach((k, v) -> sorted.put(k, v.sum()));
        sorted.forEach((k, v) -> {
            String[] p = k.split("\u0000");
            b.append("moe4j_requests_total{endpoint=\"").append(p[0]).append("\",status=\"").append(p[1]).append("\"} ").append(v).append('\n');
        });
        header(b, "moe4j_requests_rejected_busy_total", "counter", "requests refused with 429 because the queue was full");
        b.append("moe4j_requests_rejected_busy_total ").append(rejectedBusy.sum()).append('\n');
        header(b, "moe4j_requests_rejected_kv_budget_total", "counter", "generations refused with 429 because the KV budget had no room");
        b.append("moe4j_requests_rejected_kv_budget_total ").append(rejectedKvBudget.sum()).append('\n');
        header(b, "moe4j_client_disconnects_total", "counter", "streams whose client went away before the end");
        b.append("moe4j_client_disconnects_total ").append(disconnects.sum()).append('\n');
        if (s == null) return b.toString();
        String m = "{model=\"" + escape(model) + "\"}";
        header(b, "moe4j_generations_total", "counter", "generations by outcome");
        sample(b, "moe4j_generations_total", model, "outcome", "finished", s.requestsFinished());
        sample(b, "moe4j_generations_total", model, "outcome", "cancelled", s.requestsCancelled());
        sample(b, "moe4j_generations_total", model, "outcome", "failed", s.requestsFailed());
        header(b, "moe4j_prompt_tokens_total", "counter", "prompt tokens evaluated by the model (tokens in)");
        b.append("moe4j_prompt_tokens_total").append(m).append(' ').append(s.promptTokensEvaluated()).append('\n');
        header(b, "moe4j_prompt_tokens_cached_total", "counter", "prompt tokens reused from the prompt cache instead of evaluated");
        b.append("moe4j_prompt_tokens_cached_total").append(m).append(' ').append(s.promptTokensCached()).append('\n');
        header(b, "moe4j_completion_tokens_total", "counter", "tokens generated (tokens out)");
        b.append("moe4j_completion_tokens_total").append(m).append(' ').append(s.tokensGenerated()).append('\n');
        header(b, "moe4j_tokens_per_second", "gauge", "tokens generated per second, all requests together, over the last "
                + WINDOW_SECONDS + " seconds");
        b.append("moe4j_tokens_per_second").append(m).append(' ').append(String.format(java.util.Locale.ROOT, "%.3f", recentTokensPerSecond())).append('\n');
        header(b, "moe4j_batch_steps_total", "counter", "batched model steps (each runs every active sequence once)");
        b.append("moe4j_batch_steps_total").append(m).append(' ').append(s.steps()).append('\n');
        header(b, "moe4j_busy_seconds_total", "counter", "time spent in model steps");
        b.append("moe4j_busy_seconds_total").append(m).append(' ').append(String.format(java.util.Locale.ROOT, "%.6f", s.busyNanos() / 1e9)).append('\n');
        header(b, "moe4j_queue_depth", "gauge", "requests waiting for a sequence slot");
        b.append("moe4j_queue_depth").append(m).append(' ').append(s.queued()).append('\n');
        header(b, "moe4j_active_sequences", "gauge", "sequences generating now");
        b.append("moe4j_active_sequences").append(m).append(' ').append(s.active()).append('\n');
        header(b, "moe4j_slots", "gauge", "sequences that can generate together (--parallel)");
        b.append("moe4j_slots").append(m).append(' ').append(s.slots()).append('\n');
        header(b, "moe4j_kv_cache_bytes", "gauge", "memory of keys and values held (active sequences and prompt cache)");
        b.append("moe4j_kv_cache_bytes").append(m).append(' ').append(s.kvBytes()).append('\n');
        header(b, "moe4j_kv_cache_active_bytes", "gauge", "memory of keys and values of sequences generating now");
        b.append("moe4j_kv_cache_active_bytes").append(m).append(' ').append(s.kvBytesActive()).append('\n');
        if (kv != null) {
            header(b, "moe4j_kv_pages", "gauge", "KV cache pages (" + KvStore.PAGE + " positions of one layer's keys or values) by state: "
                    + "in use (held by a sequence or the prompt cache), shared (of those, held by more than one), free (kept for reuse)");
            sample(b, "moe4j_kv_pages", model, "state", "in_use", kv.pagesInUse());
            sample(b, "moe4j_kv_pages", model, "state", "shared", kv.pagesShared());
            sample(b, "moe4j_kv_pages", model, "state", "free", kv.pagesFree());
            header(b, "moe4j_kv_pool_bytes", "gauge", "bytes of the KV pool's pages in use and free");
            sample(b, "moe4j_kv_pool_bytes", model, "state", "in_use", kv.bytesInUse());
            sample(b, "moe4j_kv_pool_bytes", model, "state", "free", kv.bytesFree());
            header(b, "moe4j_kv_budget_bytes", "gauge", "the KV pool's byte budget (--kv-budget)");
            b.append("moe4j_kv_budget_bytes").append(m).append(' ').append(kv.budget()).append('\n');
        }
        long[][] ex = s.expertSelections();
        if (ex.length > 0 && ex[0].length > 0) {
            header(b, "moe4j_expert_selections_total", "counter", "tokens routed to each expert, per layer");
            for (int l = 0; l < ex.length; l++) {
                for (int e = 0; e < ex[l].length; e++) {
                    b.append("moe4j_expert_selections_total{model=\"").append(escape(model)).append("\",layer=\"").append(l)
                            .append("\",expert=\"").append(e).append("\"} ").append(ex[l][e]).append('\n');
                }
            }
        }
        return b.toString();
    }

    /** One sample of {@code name} with the model's label and one more, {@code key="value"}. */
    private static void sample(StringBuilder b, String name, String model, String key, String value, long n) {
        b.append(name).append("{model=\"").append(escape(model)).append("\",").append(key).append("=\"").append(value)
                .append("\"} ").append(n).append('\n');
    }

    private static void header(StringBuilder b, String name, String type, String help) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
