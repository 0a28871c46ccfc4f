package io.moe4j.model;

import java.util.function.Consumer;

/**
 * How far loading a model's weights has come, in bytes of the file's tensors: called as matrices are made ready
 * (copied into the decode kernels' layout, or mapped), from the loading thread, ending with {@code done == total}.
 */
@FunctionalInterface
public interface LoadProgress {
    LoadProgress NONE = (done, total) -> {
    };

    void loaded(long done, long total);

    /**
     * Progress as lines for a console or log: nothing for a load that ends within a second, else
     * {@code loading NAME: 40% of 7.36 GB} at every tenth from the first second on, and {@code loaded NAME (7.36 GB)
     * in 9.0 s} at the end.
     */
    static LoadProgress lines(String name, Consumer<String> out) {
        return lines(name, out, System::nanoTime);
    }

    /** {@link #lines(String, Consumer)} with its own clock (nanoseconds), for tests. */
    static LoadProgress lines(String name, Consumer<String> out, java.util.function.LongSupplier clock) {
        long start = clock.getAsLong();
        return new LoadProgress() {
            private int lastTenth;
            private boolean printed;

            @Override
            public void loaded(long done, long total) {
                double seconds = (clock.getAsLong() - start) / 1e9;
                int tenth = total <= 0 ? 10 : (int) Math.min(10, done * 10 / total);
                if (tenth >= 10) {
                    if (printed || seconds >= 1) out.accept(String.format("loaded %s (%.2f GB) in %.1f s", name, total / 1e9, seconds));
                    printed = false;
                    lastTenth = 10;
                } else if (tenth > lastTenth && seconds >= 1) {
                    out.accept(String.format("loading %s: %d%% of %.2f GB", name, tenth * 10, total / 1e9));
                    printed = true;
                    lastTenth = tenth;
                }
            }
        };
    }
}
