package io.moe4j.chat;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Generator;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.generate.StopReason;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A conversation keeps its KV cache from turn to turn and answers as if each turn were evaluated from scratch. */
class ConversationTest {
    static final List<String> TURNS = List.of("Hello, who are you?", "Tell me a story about a cat.", "And then what happened?");

    static Path qwen3Template() {
        return Path.of("src/test/resources/chat-templates/qwen3.jinja");
    }

    @Test
    void eachTurnEvaluatesOnlyWhatTheCacheLacksAndAnswersAsFromScratch() throws IOException {
        GenerateOptions options = new GenerateOptions(16, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
        try (Model stories = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            check(stories, ChatTemplate.of(stories, null), "You are a storyteller.", options);
        }
        try (Model qwen3 = Model.load(SharedData.goldenModel("qwen3moe-q8_0"))) {
            check(qwen3, ChatTemplate.of(qwen3, Files.readString(qwen3Template())), null, options);
        }
    }

    private static void check(Model model, ChatTemplate template, String system, GenerateOptions options) {
        List<ChatReference.Turn> expected = ChatReference.turns(model, template, system, TURNS, options);
        Conversation chat = new Conversation(model, template, system, 0, KvType.F16);
        for (int i = 0; i < TURNS.size(); i++) {
            Conversation.Reply reply = chat.reply(TURNS.get(i), options, null, null);
            ChatReference.Turn want = expected.get(i);
            String where = model.name() + " turn " + (i + 1);
            assertEquals(want.answer(), reply.text(), where);
            assertEquals(want.newTokens(), reply.result().timings().promptTokens(), where + ": tokens evaluated");
            assertEquals(want.cached(), reply.reusedTokens(), where + ": tokens reused");
            if (i > 0) {
                assertTrue(reply.reusedTokens() >= expected.get(i - 1).rendered(),
                        where + ": the previous turn's prompt is reused, not evaluated again: " + reply.reusedTokens());
            }
        }
        assertEquals(2 * TURNS.size() + (system != null ? 1 : 0), chat.messages().size());
    }

    @Test
    void aCancelledAnswerStaysAsFarAsItGotAndTheCacheStaysConsistent() {
        GenerateOptions options = new GenerateOptions(200, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
        try (Model model = Model.load(SharedData.goldenModel("qwen3moe-q8_0"))) {
            ChatTemplate template = ChatTemplate.of(model, null);
            Conversation chat = new Conversation(model, template, "Be brief.", 0, KvType.F16);
            AtomicInteger streamed = new AtomicInteger();
            Conversation.Reply cut = chat.reply(TURNS.get(0), options, t -> streamed.incrementAndGet(), () -> streamed.get() >= 5);
            assertEquals(StopReason.CANCELLED, cut.result().stopReason());
            assertEquals(5, cut.result().tokenIds().length);
            assertEquals(Message.assistant(cut.text()), chat.messages().getLast());

            Conversation.Reply next = chat.reply(TURNS.get(1), options.withMaxTokens(12), null, null);
            int[] whole = template.tokenize(template.render(chat.messages().subList(0, 4), true));
            GenerationResult scratch = new Generator(model.tokenizer()).generate(model.newSession(0, KvType.F16),
                    whole, options.withMaxTokens(12).withStop(template.stopStrings()), null, null);
            assertEquals(scratch.text(), next.text(), "the answer after a cancelled one, cached vs from scratch");
            assertTrue(next.reusedTokens() > cut.reusedTokens() + cut.result().timings().promptTokens(),
                    "the cancelled turn's prompt and answer stay cached: " + next.reusedTokens());
        }
    }

    @Test
    void aFullContextCutsTheAnswerThenRefusesTheNextMessageUntilReset() {
        GenerateOptions options = new GenerateOptions(1000, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
        try (Model model = Model.load(SharedData.models().resolve("stories260K.gguf"))) {
            Conversation chat = new Conversation(model, ChatTemplate.of(model, null), "You tell stories.", 96, KvType.F16);
            Conversation.Reply reply = chat.reply("Once upon a time", options, null, null);
            if (reply.result().stopReason() == StopReason.END_OF_GENERATION) {
                reply = chat.reply("Go on", options, null, null);
            }
            assertEquals(StopReason.CONTEXT_FULL, reply.result().stopReason());
            assertEquals(96, chat.cachedTokens());
            List<Message> before = chat.messages();
            Conversation.ContextFullException e = assertThrows(Conversation.ContextFullException.class,
                    () -> chat.reply("And then?", options, null, null));
            assertTrue(e.getMessage().contains("the context holds 96"), e.getMessage());
            assertEquals(before, chat.messages(), "a refused message is not added");

            chat.reset();
            assertEquals(List.of(Message.system("You tell stories.")), chat.messages());
            Conversation.Reply again = chat.reply("Once upon a time", options.withMaxTokens(8), null, null);
            assertEquals(8, again.result().tokenIds().length);
            assertTrue(again.reusedTokens() > 0, "the system prompt's tokens stay cached across /reset");
        }
    }
}
