package io.moe4j.cli;

import io.moe4j.chat.Conversation;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.generate.GenerationResult;
import io.moe4j.generate.Timings;
import io.moe4j.server.jinja.TemplateException;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The read-answer loop of {@code moe4j chat}: lines in, commands, streamed answers, Ctrl-C.
 *
 * <p>Standard input is read on its own thread into a queue, so that the main thread can wait for either a line or
 * a Ctrl-C at the prompt (a blocking read cannot be interrupted). Answers go to {@code out}; everything else
 * (notes, statistics, help) to {@code err}, so that piped output holds only the answers.
 */
final class ChatLoop {
    /** Exit code after Ctrl-C twice at the prompt: the shell convention for a program ended by SIGINT. */
    static final int EXIT_INTERRUPTED = 130;

    private static final String PROMPT = "> ", CONTINUATION = ". ";
    private static final String HELP = """
            /reset  forgets the conversation; the system prompt stays
            /exit   quits (so do /quit, Ctrl-D, and Ctrl-C twice at the prompt)
            /help   shows this list
            A line ending in \\ continues on the next one. Ctrl-C stops the answer being written; it stays in the
            conversation as far as it got.""";

    private sealed interface Input {
    }

    private record Line(String text) implements Input {
    }

    private record End() implements Input {
    }

    private record Interrupt() implements Input {
    }

    private final Conversation conversation;
    private final GenerateOptions options;
    private final InputStream in;
    private final PrintWriter out, err;
    private final boolean terminal;
    private final BlockingQueue<Input> inputs = new LinkedBlockingQueue<>();
    private final AtomicBoolean cancel = new AtomicBoolean();
    private volatile boolean answering;

    /** {@code terminal}: whether a person types at a terminal (then a prompt is shown). */
    ChatLoop(Conversation conversation, GenerateOptions options, InputStream in, PrintWriter out, PrintWriter err, boolean terminal) {
        this.conversation = conversation;
        this.options = options;
        this.in = in;
        this.out = out;
        this.err = err;
        this.terminal = terminal;
    }

    /** Runs until /exit, the end of input or Ctrl-C twice at the prompt; returns the exit code. */
    int run() {
        Thread.ofPlatform().daemon().name("chat-input").start(this::readInput);
        SignalHandler previous = handleCtrlC(this::onCtrlC);
        try {
            if (terminal) err.println("Type /help for the commands; /exit or Ctrl-D quits.");
            StringBuilder pending = new StringBuilder();
            boolean ctrlCAtPrompt = false;
            while (true) {
                if (terminal) {
                    out.print(pending.isEmpty() ? PROMPT : CONTINUATION);
                    out.flush();
                }
                Input input = inputs.take();
                switch (input) {
                    case End end -> {
                        if (!pending.isEmpty()) answer(pending.toString());
                        else if (terminal) out.println();
                        return 0;
                    }
                    case Interrupt interrupt -> {
                        if (ctrlCAtPrompt) {
                            out.println();
                            return EXIT_INTERRUPTED;
                        }
                        ctrlCAtPrompt = true;
                        pending.setLength(0);
                        err.println();
                        err.println("(Ctrl-C again, /exit or Ctrl-D quits)");
                    }
                    case Line line -> {
                        ctrlCAtPrompt = false;
                        String text = line.text();
                        if (text.endsWith("\\")) {
                            pending.append(text, 0, text.length() - 1).append('\n');
                            continue;
                        }
                        pending.append(text);
                        String message = pending.toString();
                        pending.setLength(0);
                        if (!answer(message)) return 0;
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return EXIT_INTERRUPTED;
        } finally {
            if (previous != null) Signal.handle(new Signal("INT"), previous);
        }
    }

    /** Handles one message or command; false when it asks to quit. */
    private boolean answer(String message) {
        String text = message.strip();
        if (text.isEmpty()) return true;
        if (text.matches("/\\w+")) return command(text);
        cancel.set(false);
        answering = true;
        Conversation.Reply reply;
        try {
            reply = conversation.reply(text, options, token -> {
                out.print(token.text());
                out.flush();
            }, cancel::get);
        } catch (Conversation.ContextFullException e) {
            err.println("[" + e.getMessage() + "; /reset starts a new conversation, a larger -c leaves more room]");
            return true;
        } catch (TemplateException e) {
            err.println("[the chat template cannot render this conversation: " + e.getMessage() + "]");
            return true;
        } finally {
            answering = false;
        }
        out.println();
        out.flush();
        GenerationResult r = reply.result();
        switch (r.stopReason()) {
            case CANCELLED -> err.println("[stopped: the answer stays in the conversation as far as it got]");
            case CONTEXT_FULL -> err.println("[the context of " + conversation.contextSize()
                    + " tokens is full (stop: length), the answer stops here; /reset starts a new conversation, "
                    + "--context-shift drops the oldest tokens instead]");
            case MAX_TOKENS -> err.println("[the answer reached the limit of " + options.maxTokens() + " tokens (-n)]");
            default -> {
            }
        }
        Timings t = r.timings();
        err.printf("[prompt: %d new tokens + %d cached, %.1f tok/s | answer: %d tokens, %.1f tok/s]%n",
                t.promptTokens(), reply.reusedTokens(), t.promptTokensPerSecond(), t.generatedTokens(), t.decodeTokensPerSecond());
        err.flush();
        return true;
    }

    private boolean command(String command) {
        switch (command) {
            case "/exit", "/quit" -> {
                return false;
            }
            case "/reset" -> {
                conversation.reset();
                err.println(conversation.messages().isEmpty() ? "[conversation forgotten]"
                        : "[conversation forgotten; the system prompt stays]");
            }
            case "/help" -> err.println(HELP);
            default -> err.println("[unknown command " + command + "; /help lists the commands]");
        }
        return true;
    }

    private void onCtrlC() {
        if (answering) cancel.set(true);
        else inputs.add(new Interrupt());
    }

    private void readInput() {
        // Not closed: it is the process's standard input.
        BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        try {
            for (String line; (line = reader.readLine()) != null; ) inputs.add(new Line(line));
        } catch (IOException e) {
            err.println("[cannot read standard input: " + e.getMessage() + "]");
        }
        inputs.add(new End());
    }

    /**
     * Routes SIGINT to {@code handler} and returns the handler it replaces; null where the JVM keeps the signal to
     * itself (started with -Xrs), and Ctrl-C then ends the program as usual.
     */
    private static SignalHandler handleCtrlC(Runnable handler) {
        try {
            return Signal.handle(new Signal("INT"), signal -> handler.run());
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}
