package io.moe4j.bench;

import io.moe4j.cli.CliCommandProvider;

import java.util.List;

/** Registers the benchmark commands with {@code bin/moe4j}. */
public final class BenchCommands implements CliCommandProvider {
    @Override
    public List<Object> commands() {
        return List.of(new BenchCommand(), new CompareCommand(), new JmhCommand());
    }
}
