package io.moe4j.generate;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.chat.ChatTemplate;
import io.moe4j.chat.Conversation;
import io.moe4j.chat.Message;
import io.moe4j.kernels.KvType;
import io.moe4j.kernels.Rope;
import io.moe4j.model.Architecture;
import io.moe4j.model.KvCache;
import io.moe4j.model.ModelConfig;
import io.moe4j.model.Transformer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A context shift on the golden models. It is not a re-evaluation: a surviving token's keys and values of the
 * second layer on were computed while it attended to the tokens dropped, so a shifted session differs from a fresh
 * one fed what it kept by as much as those tokens mattered (0.03 to 0.5 in the logits of these 2-layer models).
 * What a shift must get exactly right is checked where it is all that matters:
 * <ul>
 * <li>A model cut to its first layer, whose keys and values depend on the token and its position alone: there a
 * shifted session must be a fresh one fed the kept prefix and the surviving tokens.
 * <li>The whole model with nothing kept: every cached position moves by the same amount, so rotary attention sees
 * the same relative positions; the next token must get the logits it gets in the unshifted session when it attends
 * to the surviving positions only (a sliding window over them, on a copy of the model's configuration).
 * </ul>
 */
class ContextShiftTest {

    static int[] randomTokens(int n, int vocab, long seed) {
        Random r = new Random(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(vocab);
        return t;
    }

    /** The tokens a shift of {@code discard} after {@code keep} leaves of {@code tokens}. */
    static int[] shifted(int[] tokens, int keep, int discard) {
        int[] s = new int[tokens.length - discard];
        System.arraycopy(tokens, 0, s, 0, keep);
        System.arraycopy(tokens, keep + discard, s, keep, tokens.length - keep - discard);
        return s;
    }

    static int[] concat(int[] a, int... b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }

    /** {@code c} with {@code blocks} layers, {@code ropeDim} rotary dimensions, {@code arch} and a window of {@code window}. */
    static ModelConfig with(ModelConfig c, int blocks, int ropeDim, Architecture arch, int window) {
        return new ModelConfig(arch, c.embeddingLength(), blocks, c.headCount(), c.kvHeadCount(), c.headDim(), c.valueDim(),
                ropeDim, c.ropeBase(), c.ropeScaling(), c.ropeScalingFactor(), c.ropeOriginalContext(), c.ropeAttnFactor(),
                c.rmsEps(), c.expertCount(), c.expertUsedCount(), c.normalizeTopK(), c.expertWeightsScale(), c.contextLength(),
                window);
    }

    static Session session(Model m, Transformer t, int capacity, KvType kv) {
        return new Session(t, new KvCache(t.config(), capacity, kv, m.kvPool()));
    }

    /**
     * Feeds {@code n} random tokens into a session of {@code t}, shifts it by {@code discard} after {@code keep},
     * feeds {@code more} tokens and shifts by half as much again, then feeds one more token; returns max |shifted -
     * fresh| of that token's logits, the fresh session fed what the shifted one holds.
     */
    static double shiftVsFresh(Model m, Transformer t, KvType kv, int capacity, int n, int keep, int discard, int more, long seed) {
        int[] all = randomTokens(n + more + 1, m.tokenizer().vocabSize(), seed);
        int[] held = Arrays.copyOf(all, n);
        try (Session s = session(m, t, capacity, kv)) {
            s.feed(held);
            s.shift(keep, discard);
            held = shifted(held, keep, discard);
            assertArrayEquals(held, s.tokens());
            if (more > 0) {
                int[] next = Arrays.copyOfRange(all, n, n + more);
                s.feed(next);
                s.shift(keep, discard / 2);
                held = shifted(concat(held, next), keep, discard / 2);
                assertArrayEquals(held, s.tokens());
            }
            assertEquals(held.length, s.length());
            assertArrayEquals(Arrays.copyOf(all, n + more), s.history(), "the history keeps what the shifts dropped");
            float[] got = s.feed(all[all.length - 1]);
            try (Session fresh = session(m, t, capacity, kv)) {
                return maxAbsDiff(fresh.feed(concat(held, all[all.length - 1])), got);
            }
        }
    }

    /** Keep 0: the shifted session's next logits against the unshifted one's attending to the survivors only. */
    static double shiftVsMasked(Model m, KvType kv, int capacity, int n, int discard, long seed) {
        Transformer t = m.transformer();
        ModelConfig c = t.config();
        int[] all = randomTokens(n + 1, m.tokenizer().vocabSize(), seed);
        try (Session s = session(m, t, capacity, kv); Session whole = session(m, t, capacity, kv)) {
            s.feed(Arrays.copyOf(all, n));
            whole.feed(Arrays.copyOf(all, n));
            s.shift(0, discard);
            float[] got = s.feed(all[n]);
            // every layer a window that starts at the first survivor (a model's own window must be that one)
            int window = n - discard + 1;
            assertTrue(c.slidingWindow() == 0 || c.slidingWindow() == window, "a window of " + window + " for " + c.arch().name());
            Transformer masked = new Transformer(with(c, c.blockCount(), c.ropeDim(), c.arch().withSlidingWindowPeriod(c.blockCount() + 1),
                    window), t.weights(), t.backend());
            float[] want = masked.forward(new int[]{all[n]}, 1, whole.cache(), false, null);
            return maxAbsDiff(want, got);
        }
    }

    /**
     * The bounds on max |shifted - reference| of the next token's logits, by KV type: F32 keys rotated in two steps
     * (the position's rotation, then the shift's) differ from keys rotated once by float rounding, about 1e-6 in
     * the logits here (measured: at most 9.5e-7); F16 and Q8_0 also round the rotated keys to their type again
     * (measured: at most 4.7e-4 and 1.5e-2). A key rotated by the wrong angle or scaled by YaRN's magnitude twice
     * moves them by 0.1 or more.
     */
    static double bound(KvType kv) {
        return switch (kv) {
            case F32 -> 1e-5;
            case F16 -> 2e-3;
            case Q8_0 -> 5e-2;
        };
    }

    static final String[] GOLDEN = {"llama_moe-f32", "qwen3moe-q8_0", "gpt_oss-mxfp4_moe", "llama_moe_yarn_long-f16"};

    /**
     * The first layer alone: NORM (llama_moe) and NeoX (qwen3moe, gpt-oss) RoPE, YaRN (gpt-oss, llama_moe_yarn_long),
     * gpt-oss's sliding window of 16 (at 300 positions its first page is given back, and the shift moves the window
     * into pages it takes again), a prefix kept and none, two shifts in a row, and half the rotary dimensions in the
     * other style (a copy of the configuration; the equivalence holds for any).
     */
    @Test
    void aShiftedFirstLayerIsTheFreshEvaluationOfWhatItKeeps() {
        for (String id : GOLDEN) {
            try (Model m = Model.load(SharedData.goldenModel(id))) {
                ModelConfig c = m.config();
                Transformer one = new Transformer(with(c, 1, c.ropeDim(), c.arch(), c.slidingWindow()), m.transformer().weights(), m.backend());
                Rope.Style other = c.arch().ropeStyle() == Rope.Style.NORM ? Rope.Style.NEOX : Rope.Style.NORM;
                Transformer partial = new Transformer(with(c, 1, c.ropeDim() / 2, c.arch().withRope(other), c.slidingWindow()),
                        m.transformer().weights(), m.backend());
                for (KvType kv : KvType.values()) {
                    String what = id + " first layer, KV " + kv;
                    assertWithin(bound(kv), shiftVsFresh(m, one, kv, 512, 300, 4, 148, 60, 1), what + ", keep 4");
                    assertWithin(bound(kv), shiftVsFresh(m, one, kv, 512, 500, 0, 260, 0, 2), what + ", keep 0");
                    assertWithin(bound(kv), shiftVsFresh(m, partial, kv, 512, 400, 30, 3, 0, 3),
                            what + ", rope " + other + " over " + c.ropeDim() / 2 + " of " + c.headDim());
                }
            }
        }
    }

    /** The whole models, nothing kept (for gpt-oss, a shift that leaves its window of 16: then one window fits every layer). */
    @Test
    void theWholeModelShiftedWithNothingKeptAttendsAsBeforeToTheSurvivors() {
        for (String id : GOLDEN) {
            try (Model m = Model.load(SharedData.goldenModel(id))) {
                int window = m.config().slidingWindow();
                for (KvType kv : KvType.values()) {
                    double d = window == 0 ? shiftVsMasked(m, kv, 512, 400, 190, 4) : shiftVsMasked(m, kv, 512, 300, 300 - window + 1, 4);
                    assertWithin(bound(kv), d, id + ", KV " + kv);
                }
            }
        }
    }

    static void assertWithin(double bound, double got, String what) {
        assertTrue(got <= bound, what + ": max |shifted - reference| = " + got + " > " + bound);
    }

    /**
     * gpt-oss's window layer at 275 positions has given back its first page; with 255 tokens kept and 10 dropped,
     * the next token's window would reach back into kept positions from that page: the cache says it cannot shift
     * (and is left as it was), and the session evaluates what it keeps again, which is exactly a fresh session.
     */
    @Test
    void whereAWindowLacksKeptPositionsTheSessionEvaluatesThemAgain() {
        try (Model m = Model.load(SharedData.goldenModel("gpt_oss-mxfp4_moe"))) {
            int[] all = randomTokens(276, m.tokenizer().vocabSize(), 5);
            int[] first = Arrays.copyOf(all, 275);
            try (Session probe = m.newSession(275, KvType.F32)) {
                probe.feed(first);
                long bytes = probe.cache().bytes();
                assertFalse(m.transformer().shift(probe.cache(), 255, 10));
                assertEquals(275, probe.length());
                assertEquals(bytes, probe.cache().bytes());
                assertTrue(m.transformer().shift(probe.cache(), 255, 5), "5 dropped: the window stays among the surviving tokens");
                assertEquals(270, probe.length());
            }
            try (Session s = m.newSession(275, KvType.F32); Session fresh = m.newSession(275, KvType.F32)) {
                s.feed(first);
                s.shift(255, 10);
                int[] kept = shifted(first, 255, 10);
                assertArrayEquals(kept, s.tokens());
                assertArrayEquals(fresh.feed(concat(kept, all[275])), s.feed(all[275]));
            }
        }
    }

    /** The history keeps the tokens a shift dropped; rewinding it keeps the held tokens that came from the part kept. */
    @Test
    void aSessionsHistoryMapsToTheTokensItHolds() {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf")); Session s = m.newSession(64, KvType.F32)) {
            int[] fed = randomTokens(20, m.tokenizer().vocabSize(), 6);
            s.feed(fed);
            s.shift(3, 7);
            assertArrayEquals(fed, s.history());
            assertArrayEquals(shifted(fed, 3, 7), s.tokens());
            assertEquals(15, s.rewindHistory(15));
            assertArrayEquals(Arrays.copyOf(fed, 15), s.history());
            assertArrayEquals(shifted(Arrays.copyOf(fed, 15), 3, 7), s.tokens(), "the kept 3 and the survivors up to 15");
            assertEquals(5, s.rewindHistory(5), "inside the gap: its tokens stay dropped");
            assertArrayEquals(Arrays.copyOf(fed, 3), s.tokens());
            s.feed(42);
            assertArrayEquals(concat(Arrays.copyOf(fed, 5), 42), s.history());
            assertArrayEquals(concat(Arrays.copyOf(fed, 3), 42), s.tokens());
            s.rewind(2);
            assertArrayEquals(Arrays.copyOf(fed, 2), s.history());
        }
    }

    // ---- generation --------------------------------------------------------------------------------------------

    /**
     * Greedy on stories260K in a context of 32: without context shift, 28 tokens and CONTEXT_FULL; with it, the same
     * 28 tokens and on to the 100 asked for, each full context shifted by (32 - 3) / 2 = 14 (the BOS token and
     * --keep 2 kept); the session then holds the kept prefix and the latest tokens of its history.
     */
    @Test
    void generationWithContextShiftGoesOnPastTheContext() {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            Generator g = new Generator(m.tokenizer());
            int[] prompt = m.tokenize("Once upon a time");
            assertEquals(m.tokenizer().bos(), prompt[0]);
            GenerateOptions options = GenerateOptions.greedy(100).withKvType(KvType.F32);
            GenerationResult full;
            try (Session s = m.newSession(32, KvType.F32)) {
                full = g.generate(s, prompt, options, null, null);
            }
            assertEquals(StopReason.CONTEXT_FULL, full.stopReason());
            assertEquals(32 - prompt.length + 1, full.tokenIds().length);
            try (Session s = m.newSession(32, KvType.F32)) {
                GenerationResult r = g.generate(s, prompt, options.withContextShift(true).withKeep(2), null, null);
                assertEquals(StopReason.MAX_TOKENS, r.stopReason());
                assertEquals(100, r.tokenIds().length);
                assertArrayEquals(full.tokenIds(), Arrays.copyOf(r.tokenIds(), full.tokenIds().length),
                        "the same tokens until the context is full");
                int length = prompt.length;
                for (int fed = 0; fed < 99; fed++) { // the 100th token is not fed
                    if (length == 32) length -= 14;
                    length++;
                }
                assertEquals(length, s.length());
                int[] history = s.history(), held = s.tokens();
                assertArrayEquals(concat(prompt, Arrays.copyOf(r.tokenIds(), 99)), history);
                assertArrayEquals(Arrays.copyOf(prompt, 3), Arrays.copyOf(held, 3), "BOS and --keep 2");
                assertArrayEquals(Arrays.copyOfRange(history, history.length - (length - 3), history.length),
                        Arrays.copyOfRange(held, 3, length), "the latest tokens");
            }
        }
    }

    /**
     * A prompt that does not fit after what the session holds is an error, or with context shift makes a shift
     * first; one that does not fit after the kept tokens alone stays an error, and so does a keep of the context.
     */
    @Test
    void aPromptThatDoesNotFitIsMadeRoomForOrRefused() {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            Generator g = new Generator(m.tokenizer());
            int[] prompt = m.tokenize("Once upon a time");
            int[] more = Arrays.copyOf(m.tokenizer().encode(" there was a little girl who liked to play in the park with "
                    + "her friends every day after school, and one day she found a dog", false, true), 25);
            GenerateOptions shift = GenerateOptions.greedy(5).withContextShift(true).withKeep(2);
            try (Session s = m.newSession(32, KvType.F32)) {
                g.generate(s, prompt, GenerateOptions.greedy(10), null, null);
                assertEquals(prompt.length + 9, s.length());
                int[] before = s.tokens();
                var e = org.junit.jupiter.api.Assertions.assertThrows(io.moe4j.model.ContextOverflowException.class,
                        () -> g.generate(s, more, GenerateOptions.greedy(5), null, null));
                assertTrue(e.getMessage().contains("context size of 32"), e.getMessage());
                assertArrayEquals(before, s.tokens(), "nothing changed");
                org.junit.jupiter.api.Assertions.assertThrows(io.moe4j.model.ContextOverflowException.class,
                        () -> g.generate(s, Arrays.copyOf(more, 30), shift, null, null), "3 kept + 30 > 32");
                var k = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> g.generate(s, more, shift.withKeep(32), null, null));
                assertTrue(k.getMessage().contains("keep 32 must be less than the context size 32"), k.getMessage());
                assertArrayEquals(before, s.tokens(), "nothing changed");

                // 14 held + 25 > 32: drop max((14 - 3) / 2, 14 + 25 - 32) = 7 after the BOS token and 2 more
                int[][] afterPrompt = new int[1][];
                GenerationResult r = g.generate(s, more, shift, t -> {
                    if (afterPrompt[0] == null) afterPrompt[0] = s.tokens();
                }, null);
                assertEquals(5, r.tokenIds().length);
                int[] held = afterPrompt[0];
                assertEquals(32, held.length);
                assertArrayEquals(Arrays.copyOf(before, 3), Arrays.copyOf(held, 3));
                assertArrayEquals(Arrays.copyOfRange(before, 10, 14), Arrays.copyOfRange(held, 3, 7));
                assertArrayEquals(more, Arrays.copyOfRange(held, 7, 32));
            }
            var o = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> GenerateOptions.greedy(5).withContextSize(16).withKeep(16));
            assertTrue(o.getMessage().contains("keep 16 must be less than the context size 16"), o.getMessage());
        }
    }

    /**
     * A chat in a context of 96 with context shift: answers longer than the context, and later turns whose whole
     * rendering no longer fits, go on; each turn evaluates only what is new since the previous one.
     */
    @Test
    void aConversationWithContextShiftGoesOnTurnAfterTurn() {
        try (Model m = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            ChatTemplate template = ChatTemplate.of(m, null);
            GenerateOptions options = GenerateOptions.greedy(150).withContextShift(true).withKeep(4);
            try (Conversation chat = new Conversation(m, template, "You tell stories.", 96, KvType.F16)) {
                int generated = 0, previous = 0;
                for (String turn : List.of("Once upon a time", "Go on", "And then?")) {
                    List<Message> next = new ArrayList<>(chat.messages());
                    next.add(Message.user(turn));
                    int rendered = template.tokenize(template.render(next, true)).length;
                    Conversation.Reply reply = chat.reply(turn, options, null, null);
                    assertTrue(reply.result().stopReason() == StopReason.MAX_TOKENS
                            || reply.result().stopReason() == StopReason.END_OF_GENERATION, turn + ": " + reply.result().stopReason());
                    assertTrue(chat.cachedTokens() <= 96);
                    if (previous > 0) {
                        assertTrue(rendered > 96, turn + ": the conversation is " + rendered + " tokens, more than the context");
                        assertTrue(reply.reusedTokens() > 0, turn + ": the shifted conversation is reused");
                        // at least the previous turn's prompt is in the session's history
                        assertTrue(reply.result().timings().promptTokens() <= rendered - previous, turn + ": "
                                + reply.result().timings().promptTokens() + " tokens evaluated of " + rendered);
                    }
                    previous = rendered;
                    generated += reply.result().tokenIds().length;
                }
                assertTrue(generated > 96, generated + " tokens in a context of 96");
            }
        }
    }
}
