package io.moe4j;

import java.util.Locale;

/** Byte counts as people read them, in one format everywhere the engine and its tools print one. */
public final class ByteSize {
    private ByteSize() {
    }

    /** {@code 512 B}, {@code 1.5 KiB}, {@code 40.0 MiB}, {@code 18.34 GiB} (binary units, a dot as separator). */
    public static String format(long bytes) {
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1L << 20) return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
        if (bytes < 1L << 30) return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
}
