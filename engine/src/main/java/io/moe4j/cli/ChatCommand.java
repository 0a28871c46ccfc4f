package io.moe4j.cli;

import io.moe4j.Model;
import io.moe4j.chat.ChatTemplate;
import io.moe4j.chat.Conversation;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.server.jinja.TemplateException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.Console;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Chat with a model, turn by turn, in its own chat template (ChatML for a model without one).",
                "Answers stream as they are generated; the conversation's KV cache is kept from turn to turn, so a turn "
                        + "evaluates only its new tokens. After each answer, stderr shows the tokens evaluated and the "
                        + "prompt and answer speeds.",
                "Type a message and Enter; a line ending in \\ continues on the next. Commands: /reset forgets the "
                        + "conversation but keeps the system prompt, /exit (or Ctrl-D) quits, /help lists them. Ctrl-C "
                        + "stops the answer being written, which stays in the conversation as far as it got; at the "
                        + "prompt, Ctrl-C twice quits.",
                "Standard input may be a pipe: each line is a message, and no prompt is printed."})
final class ChatCommand implements Callable<Integer> {
    @Mixin
    ModelOption model;
    @Mixin
    DeviceOption device;
    @Option(names = {"-s", "--system"}, paramLabel = "PROMPT",
            description = "A system prompt that opens the conversation and survives /reset. Default: none.")
    String system;
    @Mixin
    ChatTemplateOption chatTemplate;
    @Option(names = {"-n", "--max-new-tokens"}, paramLabel = "N", defaultValue = "512",
            description = "The most tokens one answer may have; it ends sooner at the model's end of turn or when the context is full "
                    + "(unless --context-shift). Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;
    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "The context size in tokens, shared by the whole conversation. Default: the model's own context, or what fits in the KV budget if less.")
    int ctx;
    @Mixin
    ContextShiftOption contextShift;
    @Mixin
    KvTypeOption kvType;
    @Mixin
    KvBudgetOption kvBudget;
    @Mixin
    RopeOption rope;
    @Mixin
    BatchOption batchOption;
    @Mixin
    SamplingFlags sampling;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        if (maxNewTokens < 1) throw new IllegalArgumentException("-n/--max-new-tokens must be at least 1, got " + maxNewTokens);
        if (ctx < 0) throw new IllegalArgumentException("-c/--ctx must be 0 (the model's) or more, got " + ctx);
        contextShift.check();
        GenerateOptions options = new GenerateOptions(maxNewTokens, sampling.options(), List.of(), ctx, kvType.type());
        String templateSource = chatTemplate.source();
        batchOption.check();
        io.moe4j.model.RopeOverrides ropeOverrides = rope.overrides();
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        Path path = model.resolve(err);
        try (Model m = device.load(path, err, ropeOverrides)) {
            kvBudget.apply(m);
            batchOption.apply(m);
            ChatTemplate template;
            try {
                template = ChatTemplate.of(m, templateSource);
            } catch (TemplateException e) {
                throw new IllegalArgumentException((chatTemplate.file != null ? chatTemplate.file : "the model's chat template")
                        + " is not a template moe4j can read: " + e.getMessage());
            }
            try (Conversation conversation = new Conversation(m, template, system, ctx, kvType.type())) {
                GenerateOptions turn = contextShift.apply(options, conversation.contextSize());
                err.println("moe4j: chatting with " + m.name() + " in " + (chatTemplate.file != null ? "the template of " + chatTemplate.file
                        : template.isFallback() ? "ChatML (the model has no chat template)" : "its own chat template")
                        + "; " + ContextInfo.describe(m, conversation.contextSize(), ctx, kvType.type()));
                Console console = System.console();
                boolean terminal = console != null && console.isTerminal();
                return new ChatLoop(conversation, turn, System.in, spec.commandLine().getOut(), err, terminal).run();
            }
        }
    }
}
