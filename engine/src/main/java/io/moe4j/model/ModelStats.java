package io.moe4j.model;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;

/**
 * Parameter and byte counts of a model file: total, active per token (only k of the routed experts count), and
 * the weight bytes that decoding one token reads — the number the memory-bandwidth roofline divides by.
 *
 * @param totalParams        every element of every tensor
 * @param activeParams       parameters used per token: all but the unselected experts and the embedding table
 * @param expertParams       parameters in routed-expert tensors
 * @param decodeBytesPerToken bytes read per decoded token: attention, norms, router, shared experts, k routed
 *                            experts, the output head, and one embedding row
 */
public record ModelStats(long totalParams, long activeParams, long expertParams, long totalBytes, long decodeBytesPerToken) {

    public static ModelStats of(GgufFile file, ModelConfig cfg) {
        long total = 0, active = 0, experts = 0, bytes = 0, decodeBytes = 0;
        double share = cfg.isMoe() ? (double) cfg.expertUsedCount() / cfg.expertCount() : 1.0;
        GgufTensor emb = file.tensor("token_embd.weight");
        boolean tied = file.tensor("output.weight") == null;
        for (GgufTensor t : file.tensors().values()) {
            long n = t.elementCount();
            total += n;
            bytes += t.byteSize();
            if (isRoutedExpert(t.name())) {
                experts += n;
                active += (long) (n * share);
                decodeBytes += (long) (t.byteSize() * share);
            } else if (t == emb) {
                long row = t.byteSize() / Math.max(1, t.dim(1));
                decodeBytes += tied ? t.byteSize() : row;
                if (tied) active += n;
            } else {
                active += n;
                decodeBytes += t.byteSize();
            }
        }
        return new ModelStats(total, active, experts, bytes, decodeBytes);
    }

    static boolean isRoutedExpert(String name) {
        return name.contains("_exps.");
    }
}
