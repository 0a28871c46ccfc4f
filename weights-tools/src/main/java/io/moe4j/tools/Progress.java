package io.moe4j.tools;

import io.moe4j.ByteSize;
import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress bar on stderr for long streaming jobs, and the one-line summary they end with. On a terminal the bar
 * is redrawn in place at most five times a second; otherwise (a log, CI) a line is printed every 10%. Thread-safe:
 * workers may report bytes concurrently.
 */
public final class Progress {
    private final String task;
    private final PrintStream out;
    private final boolean interactive;
    private final boolean quiet;
    private final long startNanos = System.nanoTime();
    private long total;
    private long done;
    private long items;
    private String current = "";
    private long lastDraw;
    private int lastDecile = -1;
    private boolean drawn;

    private Progress(String task, long total, PrintStream out, boolean interactive, boolean quiet) {
        this.task = task;
        this.total = total;
        this.out = out;
        this.interactive = interactive;
        this.quiet = quiet;
    }

    /** A bar for {@code totalBytes} of work on stderr (silent when {@code quiet}). */
    public static Progress start(String task, long totalBytes, boolean quiet) {
        java.io.Console c = System.console();
        return new Progress(task, totalBytes, System.err, c != null && c.isTerminal(), quiet);
    }

    /** A bar that prints nothing, for library callers and tests. */
    public static Progress silent() {
        return new Progress("", 0, System.err, false, true);
    }

    public synchronized void setTotal(long totalBytes) {
        this.total = totalBytes;
    }

    /** Names the item (tensor) being worked on. */
    public synchronized void item(String name) {
        current = name;
        items++;
    }

    /** Adds finished bytes and redraws when due. */
    public synchronized void advance(long bytes) {
        done += bytes;
        if (quiet) return;
        long now = System.nanoTime();
        if (interactive) {
            if (now - lastDraw > 200_000_000L || done >= total) {
                lastDraw = now;
                draw(now);
            }
        } else if (total > 0) {
            int decile = (int) Math.min(10, done * 10 / total);
            if (decile > lastDecile) {
                lastDecile = decile;
                out.println(line(now));
            }
        }
    }

    public synchronized long done() {
        return done;
    }

    public double seconds() {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    private void draw(long now) {
        int width = 30;
        int fill = total <= 0 ? 0 : (int) Math.min(width, done * width / total);
        String bar = "[" + "#".repeat(fill) + " ".repeat(width - fill) + "] ";
        String name = current.length() > 36 ? "..." + current.substring(current.length() - 33) : current;
        out.print("\r" + bar + line(now) + " " + name + "\u001b[K");
        out.flush();
        drawn = true;
    }

    private String line(long now) {
        double s = Math.max(1e-9, (now - startNanos) / 1e9);
        double rate = done / s;
        String pct = total > 0 ? String.format(Locale.ROOT, "%3d%%", done * 100 / total) : "";
        String eta = total > 0 && rate > 0 && done < total ? String.format(Locale.ROOT, " ETA %.0fs", (total - done) / rate) : "";
        return String.format(Locale.ROOT, "%s %s %s / %s, %s/s%s", task, pct, ByteSize.format(done), ByteSize.format(total), ByteSize.format((long) rate), eta);
    }

    /** Ends the bar and prints {@code summary} (to stderr) unless quiet; returns the summary. */
    public synchronized String finish(String summary) {
        if (!quiet) {
            if (drawn) out.print("\r\u001b[K");
            out.println(summary);
            out.flush();
        }
        return summary;
    }

    /** The standard summary: what was written, how many tensors and bytes, how long, how fast. */
    public String summary(String what, int tensors, long bytes) {
        double s = seconds();
        return String.format(Locale.ROOT, "%s: %d tensors, %s (%d bytes) in %.1f s, %.0f MB/s", what, tensors, ByteSize.format(bytes), bytes,
                s, bytes / 1e6 / Math.max(s, 1e-9));
    }

}
