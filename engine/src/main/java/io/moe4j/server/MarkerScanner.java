package io.moe4j.server;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits streamed text into plain text and marker strings (e.g. {@code <tool_call>}), holding back a tail that
 * could still become a marker, so that no marker is ever split between two results.
 */
final class MarkerScanner {
    sealed interface Piece permits Text, Marker {
    }

    record Text(String text) implements Piece {
    }

    record Marker(String marker) implements Piece {
    }

    private final List<String> markers;
    private final StringBuilder pending = new StringBuilder();

    MarkerScanner(List<String> markers) {
        this.markers = markers;
    }

    List<Piece> feed(String text) {
        pending.append(text);
        List<Piece> out = new ArrayList<>();
        while (true) {
            int best = -1;
            String found = null;
            for (String m : markers) {
                int i = pending.indexOf(m);
                if (i >= 0 && (best < 0 || i < best)) {
                    best = i;
                    found = m;
                }
            }
            if (found == null) break;
            if (best > 0) out.add(new Text(pending.substring(0, best)));
            out.add(new Marker(found));
            pending.delete(0, best + found.length());
        }
        int hold = 0;
        for (String m : markers) {
            for (int len = Math.min(m.length() - 1, pending.length()); len > hold; len--) {
                if (pending.toString().regionMatches(pending.length() - len, m, 0, len)) {
                    hold = len;
                    break;
                }
            }
        }
        if (pending.length() > hold) {
            out.add(new Text(pending.substring(0, pending.length() - hold)));
            pending.delete(0, pending.length() - hold);
        }
        return out;
    }

    /** What is held back, as text. */
    List<Piece> finish() {
        List<Piece> out = new ArrayList<>();
        if (!pending.isEmpty()) out.add(new Text(pending.toString()));
        pending.setLength(0);
        return out;
    }
}
