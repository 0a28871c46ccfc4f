package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.SharedData;
import io.moe4j.chat.ChatReference;
import io.moe4j.chat.ChatTemplate;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.SamplingOptions;
import io.moe4j.kernels.KvType;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code moe4j chat} in-process, its messages piped in: what each turn evaluates, prints and says. */
class ChatCommandTest {
    static final Pattern STATS = Pattern.compile("\\[prompt: (\\d+) new tokens \\+ (\\d+) cached, [\\d.]+ tok/s \\| answer: (\\d+) tokens, [\\d.]+ tok/s]");

    static final List<String> TURNS = List.of("Hello, who are you?", "Tell me a story about a dog.", "What was the dog's name?");

    record Result(int exit, String out, String err) {
    }

    /** Runs {@code moe4j chat args} with {@code input} as standard input. */
    static Result chat(String input, String... args) {
        CommandLine cl = Main.newCommandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        InputStream stdin = System.in;
        System.setIn(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
        try {
            List<String> all = new ArrayList<>(List.of("chat"));
            all.addAll(List.of(args));
            int code = cl.execute(all.toArray(String[]::new));
            return new Result(code, out.toString(), err.toString());
        } finally {
            System.setIn(stdin);
        }
    }

    /** The (new, cached) token counts of each turn's statistics line. */
    static List<int[]> stats(String err) {
        List<int[]> rows = new ArrayList<>();
        Matcher m = STATS.matcher(err);
        while (m.find()) rows.add(new int[]{Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))});
        return rows;
    }

    /** What the reference says each turn evaluates and answers, greedy with -n {@code maxNew}. */
    static List<ChatReference.Turn> expected(Path model, Path template, String system, List<String> lines, int maxNew) throws IOException {
        try (Model m = Model.load(model)) {
            ChatTemplate t = ChatTemplate.of(m, template == null ? null : Files.readString(template));
            GenerateOptions options = new GenerateOptions(maxNew, SamplingOptions.GREEDY, List.of(), 0, KvType.F16);
            return ChatReference.turns(m, t, system, lines, options);
        }
    }

    static void assertTurns(List<ChatReference.Turn> expected, Result r) {
        assertEquals(0, r.exit(), r.err());
        List<int[]> stats = stats(r.err());
        assertEquals(expected.size(), stats.size(), "one statistics line per answer: " + r.err());
        StringBuilder answers = new StringBuilder();
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i).newTokens(), stats.get(i)[0], "turn " + (i + 1) + ": tokens evaluated\n" + r.err());
            assertEquals(expected.get(i).cached(), stats.get(i)[1], "turn " + (i + 1) + ": tokens reused\n" + r.err());
            answers.append(expected.get(i).answer()).append('\n');
        }
        assertEquals(answers.toString(), r.out(), "stdout holds the answers and nothing else");
    }

    /** For turns of one conversation (no /reset between them). */
    static void assertEachTurnReusesThePreviousPrompt(List<ChatReference.Turn> expected, Result r) {
        List<int[]> stats = stats(r.err());
        for (int i = 1; i < expected.size(); i++) {
            assertTrue(stats.get(i)[1] >= expected.get(i - 1).rendered(),
                    "turn " + (i + 1) + " reuses the whole previous prompt: " + r.err());
        }
    }

    /** Chats greedily through {@code lines} (one conversation, then {@code after}) and checks every turn. */
    static Result converse(Path model, Path template, String system, List<String> lines, String after) throws IOException {
        List<ChatReference.Turn> expected = expected(model, template, system, lines, 10);
        List<String> args = new ArrayList<>(List.of("-m", model.toString(), "--temp", "0", "-n", "10"));
        if (template != null) args.addAll(List.of("--chat-template", template.toString()));
        if (system != null) args.addAll(List.of("-s", system));
        Result r = chat(String.join("\n", lines) + "\n" + after, args.toArray(String[]::new));
        assertTurns(expected, r);
        assertEachTurnReusesThePreviousPrompt(expected, r);
        return r;
    }

    @Test
    void threeTurnsWithStories260KEvaluateOnlyTheNewTokens() throws IOException {
        Result r = converse(SharedData.models().resolve("stories260K.gguf"), null, "You tell stories.", TURNS, "");
        assertTrue(r.err().contains("in ChatML (the model has no chat template)"), r.err());
        assertFalse(r.out().contains("> "), "no prompt when standard input is not a terminal");
    }

    @Test
    void threeTurnsWithAGoldenModelInItsTemplateAndInTheChatMlFallback() throws IOException {
        Path template = Path.of("src/test/resources/chat-templates/qwen3.jinja");
        Result r = converse(SharedData.goldenModel("qwen3moe-q8_0"), template, null, TURNS, "");
        assertTrue(r.err().contains("in the template of " + template), r.err());
        converse(SharedData.goldenModel("olmoe-q8_0"), null, null, TURNS, "/exit\nnever read, never answered\n");
    }

    @Test
    void resetForgetsTheTurnsButKeepsTheSystemPrompt() throws IOException {
        Path model = SharedData.models().resolve("stories260K.gguf");
        List<String> lines = List.of("Tell me about a cat.", "/reset", "Tell me about a cat.");
        List<ChatReference.Turn> expected = expected(model, null, "Be kind.", lines, 12);
        Result r = chat(String.join("\n", lines) + "\n/help\n/nonsense\n", "-m", model.toString(), "--temp", "0", "-n", "12", "-s", "Be kind.");
        assertTurns(expected, r);
        assertEquals(expected.get(0).answer(), expected.get(1).answer(), "after /reset, the same question gets the same answer");
        assertEquals(1, stats(r.err()).get(1)[0], "after /reset, the same question is all cached but its last token");
        assertTrue(r.err().contains("[conversation forgotten; the system prompt stays]"), r.err());
        assertTrue(r.err().contains("/reset  forgets the conversation"), "/help lists the commands: " + r.err());
        assertTrue(r.err().contains("[unknown command /nonsense; /help lists the commands]"), r.err());
    }

    @Test
    void aFullContextStopsTheAnswerWithAClearMessage() {
        Path model = SharedData.models().resolve("stories260K.gguf");
        Result r = chat("Once upon a time\nAnd then?\n", "-m", model.toString(), "--temp", "0", "-n", "1000", "-c", "80");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("[the context of 80 tokens is full (stop: length), the answer stops here; /reset starts a new "
                + "conversation, --context-shift drops the oldest tokens instead]"), r.err());
        assertTrue(r.err().contains("the context holds 80: no room is left for an answer; /reset starts a new conversation"), r.err());
    }

    @Test
    void badOptionsAreErrorsAndHelpExitsZero() {
        // Options are checked before the model is opened: no model file is needed.
        Result r = chat("", "-m", "model.gguf", "-n", "0");
        assertEquals(1, r.exit());
        assertEquals("error: -n/--max-new-tokens must be at least 1, got 0\n", r.err());
        r = chat("", "-m", "model.gguf", "--temp", "-1");
        assertEquals(1, r.exit());
        assertEquals("error: --temp must be between 0 and 100, got -1.0\n", r.err());
        r = chat("", "-m", "model.gguf", "--top-p", "0");
        assertEquals(1, r.exit());
        assertEquals("error: --top-p must be above 0 and at most 1, got 0.0\n", r.err());
        r = chat("", "-m", "model.gguf", "--chat-template", "no-such-template.jinja");
        assertEquals(1, r.exit());
        assertEquals("error: no chat template file at no-such-template.jinja\n", r.err());
        r = chat("", "--help");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("--max-new-tokens") && r.out().contains("/reset"), r.out());
    }
}
