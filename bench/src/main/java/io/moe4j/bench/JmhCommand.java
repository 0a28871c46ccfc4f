package io.moe4j.bench;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code moe4j jmh [JMH options]}: the JMH benchmarks of the kernels (io.moe4j.bench.jmh). */
@Command(name = "jmh", description = {"Run the JMH kernel benchmarks, which report GB/s of weight bytes and GFLOP/s per weight type.",
        "Every other argument goes to JMH, e.g. 'matMul' -p type=Q8_0 -p tokens=1; -h lists JMH's own options.",
        "The benchmarks are in io.moe4j.bench.jmh; docs/performance.md gives their parameters."})
public final class JmhCommand implements Callable<Integer> {
    /** {@code --help} only: {@code -h} is JMH's, which lists JMH's options. */
    @Option(names = "--help", usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    /** Everything after {@code jmh}, unparsed, for JMH. */
    @Unmatched
    List<String> args = new java.util.ArrayList<>();

    @Override
    public Integer call() throws Exception {
        org.openjdk.jmh.Main.main(args.toArray(String[]::new));
        return 0;
    }
}
