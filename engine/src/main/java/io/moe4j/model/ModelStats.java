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
 * @param expertBytes        bytes of all routed-expert tensors
 * @param expertCount        routed experts per layer (0: dense)
 * @param expertUsedCount    experts each token is routed to
 */
public record ModelStats(long totalParams, long activeParams, long expertParams, long totalBytes, long decodeBytesPerToken,
                         long expertBytes, int expertCount, int expertUsedCount) {

    /**
     * Weight bytes one batched decode step of {@code tokens} tokens (one per sequence) reads, if each token picks its
     * k experts of E independently and uniformly: everything but the routed experts once, and each expert that at
     * least one token picked, E·(1 − (1 − k/E)^n) of them per layer on average. The weights are read once per step
     * however many tokens use them, so the ratio {@code tokens · decodeBytesPerToken / batchStepBytes(tokens)} is
     * the most that batching can gain where decoding is bound by memory bandwidth.
     */
    public double batchStepBytes(int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("tokens must be positive, got " + tokens);
        if (expertCount == 0) return decodeBytesPerToken;
        double perExpert = (double) expertBytes / expertCount; // one expert, all layers
        double dense = decodeBytesPerToken - perExpert * expertUsedCount; // includes one embedding row
        double touched = expertCount * (1 - Math.pow(1 - (double) expertUsedCount / expertCount, tokens));
        return dense + touched * perExpert;
    }

    public static ModelStats of(GgufFile file, ModelConfig cfg) {
        long total = 0, active = 0, experts = 0, expertBytes = 0, bytes = 0, decodeBytes = 0;
        double share = cfg.isMoe() ? (double) cfg.expertUsedCount() / cfg.expertCount() : 1.0;
        GgufTensor emb = file.tensor("token_embd.weight");
        boolean tied = file.tensor("output.weight") == null;
        for (GgufTensor t : file.tensors().values()) {
            long n = t.elementCount();
            total += n;
            bytes += t.byteSize();
            if (isRoutedExpert(t.name())) {
                experts += n;
                expertBytes += t.byteSize();
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
        return new ModelStats(total, active, experts, bytes, decodeBytes, expertBytes, cfg.isMoe() ? cfg.expertCount() : 0,
                cfg.isMoe() ? cfg.expertUsedCount() : 0);
    }

    static boolean isRoutedExpert(String name) {
        return name.contains("_exps.");
    }
}
