package io.moe4j.bench;

import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code moe4j jmh [JMH options]}: the JMH benchmarks of the kernels (io.moe4j.bench.jmh). */
@Command(name = "jmh", description = {"Run the JMH kernel benchmarks (io.moe4j.bench.jmh): GB/s of weight bytes and "
        + "GFLOP/s per weight type. Arguments are passed to JMH, e.g. 'matMul' -p type=Q8_0 -p tokens=1; -h lists JMH's options."})
public final class JmhCommand implements Callable<Integer> {
    /** Everything after {@code jmh}, unparsed, for JMH. */
    @Unmatched
    List<String> args = new java.util.ArrayList<>();

    @Override
    public Integer call() throws Exception {
        org.openjdk.jmh.Main.main(args.toArray(String[]::new));
        return 0;
    }
}
