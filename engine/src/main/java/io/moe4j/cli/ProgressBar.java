package io.moe4j.cli;

import java.io.PrintWriter;

/** A one-line progress bar on the error stream, redrawn at most ten times a second, with a rate. */
final class ProgressBar {
    private final PrintWriter err;
    private final String label;
    private final String unit;
    private final long start = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    ProgressBar(PrintWriter err, String label, String unit) {
        this.err = err;
        this.label = label;
        this.unit = unit;
    }

    /** {@code done} of {@code total} units; {@code rate} is shown per second of {@code rateUnit} (e.g. tokens). */
    synchronized void update(long done, long total, double rate, String rateUnit) {
        long now = System.nanoTime();
        if (done < total && now - lastDraw < 100_000_000L) return;
        lastDraw = now;
        int width = 30;
        int filled = total <= 0 ? width : (int) (width * Math.min(1.0, (double) done / total));
        String bar = "#".repeat(filled) + ".".repeat(width - filled);
        double pct = total <= 0 ? 100 : 100.0 * done / total;
        err.printf("\r%s [%s] %5.1f%% %d/%d %s, %.1f %s/s ", label, bar, pct, done, total, unit, rate, rateUnit);
        err.flush();
        drawn = true;
    }

    /** Simple form: the rate is {@code done} per second. */
    void update(long done, long total) {
        update(done, total, done / seconds(), unit);
    }

    double seconds() {
        return Math.max(1e-9, (System.nanoTime() - start) / 1e9);
    }

    /** Ends the bar's line. */
    synchronized void finish() {
        if (drawn) err.println();
        err.flush();
    }
}
