package io.moe4j.cli;

import io.moe4j.ByteSize;
import io.moe4j.Model;
import io.moe4j.kernels.KvType;

import java.util.Locale;

/** The line the commands print at start about the context they use and the KV memory it may take. */
final class ContextInfo {
    private ContextInfo() {
    }

    /**
     * E.g. {@code context 40960 tokens (the model's own), KV cache F16 up to 3.8 GiB per sequence, budget 18.2 GiB}.
     *
     * @param requested the context the user asked for, 0 for the default
     */
    static String describe(Model m, int context, int requested, KvType type) {
        int own = m.config().modelContext();
        String why = requested > 0 ? "--ctx" + (requested > own ? "; the model's own is " + own : "")
                : context >= own ? "the model's own" : "what fits in the KV budget; the model's own is " + own;
        return String.format(Locale.ROOT, "context %d tokens (%s), KV cache %s up to %s per sequence, budget %s", context, why,
                type.name(), ByteSize.format(m.kvBytes(context, type)), ByteSize.format(m.kvPool().stats().budget()));
    }

}
