package io.moe4j.tools.cli;

import io.moe4j.cli.CliCommandProvider;

import java.util.List;

/** Registers the weights-tools subcommands with {@code bin/moe4j} (see META-INF/services). */
public final class ToolsCommands implements CliCommandProvider {
    @Override
    public List<Object> commands() {
        return List.of(new SynthCommand(), new QuantizeCommand(), new ConvertCommand(), new ExportCommand(), new UpcycleCommand());
    }
}
