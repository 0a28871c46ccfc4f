package io.moe4j.cli;

import io.moe4j.SharedData;
import io.moe4j.chat.ChatReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code moe4j chat} as a person uses it: in its own JVM on a pseudo-terminal (util-linux {@code script} makes
 * one), so that it prompts, and Ctrl-C reaches it as SIGINT from the terminal.
 */
class ChatTerminalTest {
    static final long WAIT_MS = 120_000;

    /** A chat process on a pseudo-terminal; what it prints is collected as it comes. */
    static final class Terminal implements AutoCloseable {
        private final Process process;
        private final OutputStream keyboard;
        private final StringBuffer screen = new StringBuffer();
        private int seen;

        Terminal(List<String> chatArgs) throws IOException {
            Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")),
                    "SKIPPED: util-linux script (/usr/bin/script) is not installed; it provides the pseudo-terminal");
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), Main.class.getName(), "chat"));
            cmd.addAll(chatArgs);
            String line = String.join(" ", cmd.stream().map(a -> "'" + a.replace("'", "'\\''") + "'").toList());
            process = new ProcessBuilder("/usr/bin/script", "-qfec", line, "/dev/null").redirectErrorStream(true).start();
            keyboard = process.getOutputStream();
            Thread.ofPlatform().daemon().start(() -> {
                try (InputStream in = process.getInputStream()) {
                    byte[] buf = new byte[4096];
                    for (int n; (n = in.read(buf)) > 0; ) screen.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                } catch (IOException e) {
                    screen.append("\n[test: reading the terminal failed: ").append(e).append("]");
                }
            });
        }

        void type(String keys) throws IOException {
            keyboard.write(keys.getBytes(StandardCharsets.UTF_8));
            keyboard.flush();
        }

        /** Waits for {@code pattern} after what earlier waits matched; returns the match. */
        Matcher await(Pattern pattern) throws InterruptedException {
            long deadline = System.currentTimeMillis() + WAIT_MS;
            while (System.currentTimeMillis() < deadline) {
                Matcher m = pattern.matcher(screen);
                if (m.find(seen)) {
                    seen = m.end();
                    return m;
                }
                Thread.sleep(20);
            }
            fail("the terminal never showed " + pattern + "; it shows:\n" + screen);
            return null;
        }

        Matcher await(String literal) throws InterruptedException {
            return await(Pattern.compile(Pattern.quote(literal)));
        }

        /** Everything printed so far, with the terminal's line ends as the program wrote them. */
        String screen() {
            return screen.toString().replace("\r\n", "\n");
        }

        int exitCode() throws InterruptedException {
            assertTrue(process.waitFor(WAIT_MS, TimeUnit.MILLISECONDS), "chat did not end; the terminal shows:\n" + screen);
            return process.exitValue();
        }

        @Override
        public void close() {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
        }
    }

    /** Holds a conversation through the terminal and checks each turn's counts and answer against the reference. */
    private static void converse(List<ChatReference.Turn> expected, List<String> args) throws Exception {
        List<String> lines = ChatCommandTest.TURNS;
        try (Terminal t = new Terminal(args)) {
            t.await("Type /help for the commands");
            for (int i = 0; i < lines.size(); i++) {
                t.await("> ");
                t.type(lines.get(i) + "\n");
                Matcher stats = t.await(ChatCommandTest.STATS);
                assertEquals(expected.get(i).newTokens(), Integer.parseInt(stats.group(1)), "turn " + (i + 1) + ": tokens evaluated\n" + t.screen());
                assertEquals(expected.get(i).cached(), Integer.parseInt(stats.group(2)), "turn " + (i + 1) + ": tokens reused\n" + t.screen());
                assertTrue(t.screen().contains(lines.get(i) + "\n" + expected.get(i).answer() + "\n"),
                        "turn " + (i + 1) + ": the answer follows the typed line:\n" + t.screen());
                if (i > 0) {
                    assertTrue(expected.get(i).cached() >= expected.get(i - 1).rendered(),
                            "turn " + (i + 1) + " reuses the whole previous prompt: " + stats.group());
                }
            }
            t.await("> ");
            t.type("/exit\n");
            assertEquals(0, t.exitCode(), t.screen());
        }
    }

    @Test
    void threeTurnsWithStories260K() throws Exception {
        Path model = SharedData.models().resolve("stories260K.gguf").toAbsolutePath();
        List<ChatReference.Turn> expected = ChatCommandTest.expected(model, null, "You tell stories.", ChatCommandTest.TURNS, 24);
        converse(expected, List.of("-m", model.toString(), "--temp", "0", "-n", "24", "-s", "You tell stories."));
    }

    @Test
    void threeTurnsWithAGoldenModelInTheQwen3Template() throws Exception {
        Path model = SharedData.goldenModel("qwen3moe-q8_0").toAbsolutePath();
        Path template = Path.of("src/test/resources/chat-templates/qwen3.jinja").toAbsolutePath();
        List<ChatReference.Turn> expected = ChatCommandTest.expected(model, template, null, ChatCommandTest.TURNS, 10);
        converse(expected, List.of("-m", model.toString(), "--chat-template", template.toString(), "--temp", "0", "-n", "10"));
    }

    @Test
    void ctrlCStopsTheAnswerAndTheChatGoesOnThenCtrlCTwiceAtThePromptQuits() throws Exception {
        Path model = SharedData.goldenModel("qwen3moe-q8_0").toAbsolutePath();
        try (Terminal t = new Terminal(List.of("-m", model.toString(), "--temp", "0", "-n", "600"))) {
            t.await("> ");
            t.type("Tell me everything you know.\n");
            // Once the answer is streaming, long before its 600 tokens: Ctrl-C.
            t.await(Pattern.compile("Tell me everything you know\\.\r\n.{20}", Pattern.DOTALL));
            t.type("\u0003");
            t.await("[stopped: the answer stays in the conversation as far as it got]");
            Matcher stopped = t.await(ChatCommandTest.STATS);
            int answered = Integer.parseInt(stopped.group(3));
            assertTrue(answered > 0 && answered < 600, "the answer stopped early: " + answered + " tokens");

            t.await("> ");
            t.type("Thanks.\n");
            Matcher next = t.await(ChatCommandTest.STATS);
            assertTrue(Integer.parseInt(next.group(2)) > Integer.parseInt(stopped.group(1)),
                    "the stopped answer stays cached: " + next.group());
            t.await("> ");
            t.type("\u0003");
            t.await("(Ctrl-C again, /exit or Ctrl-D quits)");
            t.type("\u0003");
            assertEquals(ChatLoop.EXIT_INTERRUPTED, t.exitCode(), t.screen());
        }
    }
}
