package io.moe4j.cli;

import java.util.List;

/**
 * Lets modules above the engine (weights-tools, bench) add subcommands to {@code bin/moe4j}: list an
 * implementation in {@code META-INF/services/io.moe4j.cli.CliCommandProvider}.
 */
public interface CliCommandProvider {
    /** picocli command objects (classes annotated with {@code @Command}). */
    List<Object> commands();
}
