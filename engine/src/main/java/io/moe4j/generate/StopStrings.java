package io.moe4j.generate;

import java.util.List;

/**
 * Watches streamed text for stop strings. Text that might be the start of a stop string is held back until it is
 * known not to be one, so a stop string never reaches the caller, not even in part.
 */
public final class StopStrings {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    public StopStrings(List<String> stops) {
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
    }

    /** Adds text; returns what can be released now (may be empty). After a stop string, {@link #stopped()} is true. */
    public String accept(String text) {
        if (stopped) return "";
        pending.append(text);
        int cut = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0) {
            stopped = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        int hold = 0;
        for (String s : stops) {
            for (int len = Math.min(s.length() - 1, pending.length()); len > hold; len--) {
                if (pending.toString().regionMatches(pending.length() - len, s, 0, len)) {
                    hold = len;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        return out;
    }

    /** Whatever is still held back (at the end of generation, when no stop string came). */
    public String flush() {
        String out = stopped ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }

    public boolean stopped() {
        return stopped;
    }
}
