package io.moe4j.cli;

import io.moe4j.Model;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** {@code --kv-budget SIZE}, shared by the commands that keep KV caches (run, serve, chat-style commands). */
public final class KvBudgetOption {
    @Option(names = "--kv-budget", paramLabel = "SIZE", converter = SizeConverter.class,
            description = "The most memory the KV cache pages may take, in bytes or with a suffix k, m, g (e.g. 8g) "
                    + "(default: the physical memory less the model file and 2 GiB).")
    Long budget;

    /** Sets the budget on {@code model} when one was given. */
    public void apply(Model model) {
        if (budget != null) model.setKvBudget(budget);
    }

    /** {@code 123}, {@code 64k}, {@code 512m}, {@code 1.5g} (powers of 1024; case ignored; a trailing b allowed). */
    public static final class SizeConverter implements CommandLine.ITypeConverter<Long> {
        private static final java.util.regex.Pattern SIZE = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)([kmgt]?)b?");

        @Override
        public Long convert(String value) {
            var m = SIZE.matcher(value.trim().toLowerCase(java.util.Locale.ROOT));
            double bytes = m.matches() ? Double.parseDouble(m.group(1)) * Math.pow(1024, " kmgt".indexOf(m.group(2).isEmpty() ? " " : m.group(2))) : 0;
            if (bytes < 1 || bytes >= Long.MAX_VALUE) {
                throw new CommandLine.TypeConversionException("a size must be a positive number of bytes, optionally with k, m or g "
                        + "(e.g. 8g), got '" + value + "'");
            }
            return (long) bytes;
        }
    }
}
