package io.moe4j.batch;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.generate.StopReason;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BatchSchedulerTest {
    static Model model;

    @BeforeAll
    static void load() {
        model = Model.load(SharedData.models().resolve("stories260K.gguf"));
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    record Outcome(String text, List<Integer> ids, BatchResult result, Throwable error) {
    }

    static final class Collector implements BatchListener {
        final StringBuilder text = new StringBuilder();
        final List<Integer> ids = new ArrayList<>();
        final CompletableFuture<Outcome> done = new CompletableFuture<>();
        volatile int cachedAtStart = -1;

        @Override
        public void onStart(int promptTokens, int cachedTokens) {
            cachedAtStart = cachedTokens;
        }

        @Override
        public void onToken(TokenEvent token) {
            text.append(token.text());
            if (token.id() >= 0) ids.add(token.id());
        }

        @Override
        public void onFinish(BatchResult result) {
            done.complete(new Outcome(text.toString(), List.copyOf(ids), result, null));
        }

        @Override
        public void onError(RuntimeException error) {
            done.complete(new Outcome(text.toString(), List.copyOf(ids), null, error));
        }
    }

    static BatchRequest greedy(String prompt, int max, List<String> stop) {
        return new BatchRequest(model.tokenize(prompt), max, stop, TokenSampler.of(SamplingOptions.GREEDY), -1, false);
    }

    static Outcome await(Collector c) throws Exception {
        Outcome o = c.done.get(60, TimeUnit.SECONDS);
        if (o.error() != null) throw new AssertionError(o.error());
        return o;
    }

    static final String[] PROMPTS = {"Once upon a time", "Lily and Tom went to the park", "The cat", "One day, a little bird",
            "Sam had a big red ball. He", "There was a dog named Max"};

    @Test
    void batchedGenerationEqualsTheGeneratorAlone() throws Exception {
        try (var sched = new BatchScheduler(model.transformer(), model.tokenizer(), 4, 512, KvType.F16, 16, true, 7)) {
            List<Collector> cs = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                Collector c = new Collector();
                sched.submit(greedy(PROMPTS[i], 20 + 5 * i, List.of()), c);
                cs.add(c);
            }
            for (int i = 0; i < PROMPTS.length; i++) {
                Outcome o = await(cs.get(i));
                GenerationResult alone = model.generate(PROMPTS[i], GenerateOptions.greedy(20 + 5 * i).withContextSize(512));
                assertEquals(alone.text(), o.text(), PROMPTS[i]);
                assertArrayEquals(alone.tokenIds(), o.ids().stream().mapToInt(Integer::intValue).toArray());
                assertEquals(alone.stopReason(), o.result().stopReason());
                assertEquals(alone.tokenIds().length, o.result().completionTokens());
            }
            assertEquals(0, sched.stats().kvBytesActive());
        }
    }

    @Test
    void stopStringsAndPromptCache() throws Exception {
        try (var sched = new BatchScheduler(model.transformer(), model.tokenizer(), 2, 512, KvType.F16, 4, true)) {
            Collector a = new Collector();
            sched.submit(greedy("Once upon a time", 40, List.of(".")), a);
            Outcome first = await(a);
            GenerationResult alone = model.generate("Once upon a time", GenerateOptions.greedy(40).withStop(List.of(".")).withContextSize(512));
            assertEquals(alone.text(), first.text());
            assertEquals(StopReason.STOP_STRING, first.result().stopReason());
            // The follow-up starts with the first prompt: its keys and values are reused.
            String next = "Once upon a time" + first.text() + ". Then";
            Collector b = new Collector();
            sched.submit(greedy(next, 10, List.of()), b);
            Outcome second = await(b);
            assertTrue(second.result().cachedTokens() >= model.tokenize("Once upon a time").length - 1, "cached " + second.result().cachedTokens());
            assertEquals(model.generate(next, GenerateOptions.greedy(10).withContextSize(512)).text(), second.text());
            sched.clearPromptCache();
            assertEquals(0, sched.stats().kvBytes());
        }
    }

    @Test
    void cancellationFreesMemoryAndQueueIsBounded() throws Exception {
        try (var sched = new BatchScheduler(model.transformer(), model.tokenizer(), 1, 512, KvType.F16, 1, true)) {
            Collector a = new Collector(), b = new Collector(), c = new Collector();
            BatchHandle ha = sched.submit(greedy("Once upon a time", 400, List.of()), a);
            BatchHandle hb = sched.submit(greedy("The cat", 5, List.of()), b);
            assertThrows(QueueFullException.class, () -> sched.submit(greedy("The dog", 5, List.of()), c));
            hb.cancel();
            assertEquals(StopReason.CANCELLED, await(b).result().stopReason());
            ha.cancel();
            Outcome oa = await(a);
            assertEquals(StopReason.CANCELLED, oa.result().stopReason());
            assertTrue(oa.result().completionTokens() < 400);
            Collector d = new Collector();
            sched.submit(greedy("The dog", 3, List.of()), d);
            await(d);
            assertEquals(3, await(d).result().completionTokens());
        }
    }

    /**
     * Sixteen conversations that start with one long system prompt: its full pages are stored once (shared by the
     * prompt cache's entries), each conversation adds only the page its own tokens start in, and every answer is the
     * one it gets without a prompt cache.
     */
    @Test
    void sixteenConversationsStoreTheirCommonSystemPromptOnce() throws Exception {
        int[] story = model.tokenize("Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. ");
        int[] system = new int[600];
        system[0] = story[0]; // BOS
        for (int i = 1; i < system.length; i++) system[i] = story[1 + (i - 1) % (story.length - 1)];
        List<BatchRequest> requests = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            int[] question = model.tokenizer().encode(" Question " + i + ": what did Lily see?", false, false);
            int[] prompt = java.util.Arrays.copyOf(system, system.length + question.length);
            System.arraycopy(question, 0, prompt, system.length, question.length);
            requests.add(new BatchRequest(prompt, 8, List.of(), TokenSampler.of(SamplingOptions.GREEDY), -1, false));
        }
        var cfg = model.config();
        int buffers = 2 * cfg.blockCount();
        io.moe4j.kernels.KvPool pool = io.moe4j.kernels.Backend.cpu().kvPool(1L << 30);
        List<Outcome> shared = new ArrayList<>(), plain = new ArrayList<>();
        try (var sched = new BatchScheduler(model.transformer(), model.tokenizer(), 4, 1024, KvType.F16, 16, true, 256, pool)) {
            Collector first = new Collector();
            sched.submit(requests.get(0), first);
            shared.add(await(first));
            List<Collector> cs = new ArrayList<>();
            for (int i = 1; i < 16; i++) {
                Collector c = new Collector();
                sched.submit(requests.get(i), c);
                cs.add(c);
            }
            for (Collector c : cs) shared.add(await(c));
            for (int i = 1; i < 16; i++) {
                assertTrue(shared.get(i).result().cachedTokens() >= system.length, "conversation " + i + " reused "
                        + shared.get(i).result().cachedTokens() + " tokens");
            }
            // The 600 tokens fill 2 pages of every layer's keys and of its values: held once, by all 16 entries.
            // Each conversation's own tokens (from position 512 on) are in a third page of its own.
            var st = pool.stats();
            assertEquals(2 * buffers, st.pagesShared(), "the system prompt's full pages are shared");
            assertEquals((2 + 16) * buffers, st.pagesInUse(), "pages in use: the system prompt once, plus one per conversation");
            sched.clearPromptCache();
            assertEquals(0, pool.stats().pagesInUse());
        }
        try (var sched = new BatchScheduler(model.transformer(), model.tokenizer(), 4, 1024, KvType.F16, 16, false)) {
            for (BatchRequest r : requests) {
                Collector c = new Collector();
                sched.submit(r, c);
                plain.add(await(c));
            }
        }
        for (int i = 0; i < 16; i++) assertEquals(plain.get(i).ids(), shared.get(i).ids(), "conversation " + i);
    }
}
