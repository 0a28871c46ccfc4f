package io.moe4j.bench;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** A small self-contained SVG bar chart of the comparison: decode and prefill tokens/s of each model. */
final class Chart {
    private Chart() {
    }

    private static final String[] COLORS = {"#d95f02", "#1b9e77", "#7570b3"};

    static String svg(List<Map<String, Object>> rows, Map<String, Object> meta) {
        int w = 760, h = 420;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                + "font-family=\"sans-serif\" font-size=\"12\">%n", w, h, w, h));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">MoE vs dense baselines (moe4j, %s threads)</text>%n",
                w / 2, meta.get("threads")));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"42\" text-anchor=\"middle\" fill=\"#555\">%s, %s</text>%n",
                w / 2, escape(String.valueOf(meta.get("machine"))), meta.get("date")));
        panel(s, rows, "tg_tokens_per_s", "decode tokens/s", 40, 70, 330, 280);
        panel(s, rows, "pp_tokens_per_s", "prefill tokens/s", 400, 70, 330, 280);
        // legend
        for (int i = 0; i < rows.size(); i++) {
            int y = 380 + 14 * (i % 3) - 14;
            int x = 40 + 240 * (i / 3);
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>%n", x, y, COLORS[i % 3]));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s: %s (%.2fB total, %.2fB active)</text>%n", x + 16, y + 9,
                    escape(String.valueOf(rows.get(i).get("role"))), escape(String.valueOf(rows.get(i).get("model"))),
                    CompareCommand.d(rows.get(i), "total_params") / 1e9, CompareCommand.d(rows.get(i), "active_params") / 1e9));
        }
        s.append("</svg>\n");
        return s.toString();
    }

    private static void panel(StringBuilder s, List<Map<String, Object>> rows, String key, String title, int x0, int y0, int pw, int ph) {
        double max = 0;
        for (Map<String, Object> m : rows) max = Math.max(max, CompareCommand.d(m, key));
        double top = niceCeil(max);
        int axisX = x0 + 40, axisY = y0 + ph - 30, plotH = ph - 60;
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-weight=\"bold\">%s</text>%n", x0 + pw / 2, y0 + 10, title));
        for (int k = 0; k <= 4; k++) {
            double v = top * k / 4;
            int y = axisY - (int) Math.round(plotH * k / 4.0);
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>%n", axisX, y, x0 + pw, y));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%s</text>%n", axisX - 4, y + 4, fmt(v)));
        }
        int n = rows.size(), bw = (pw - 60) / Math.max(1, n) - 16;
        for (int i = 0; i < n; i++) {
            double v = CompareCommand.d(rows.get(i), key);
            int bh = top > 0 ? (int) Math.round(plotH * v / top) : 0;
            int x = axisX + 12 + i * (bw + 16);
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>%n", x, axisY - bh, bw, bh, COLORS[i % 3]));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x + bw / 2, axisY - bh - 4, fmt(v)));
        }
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>%n", axisX, axisY, x0 + pw, axisY));
    }

    private static double niceCeil(double v) {
        if (v <= 0) return 1;
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[]{1, 2, 2.5, 5, 10}) if (m * p >= v) return m * p;
        return 10 * p;
    }

    private static String fmt(double v) {
        return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : v >= 10 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.2f", v);
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
