package io.moe4j.kernels;

/**
 * A gated feed-forward network, or a stack of {@code count} of them (MoE experts): {@code gate} and {@code up} hold
 * {@code count * hidden} rows (expert e's rows from {@code e * hidden}), {@code down} holds {@code count * width}
 * rows; the biases (may be null) are stacked the same way.
 */
public record FeedForwardWeights(Weight gate, Weight up, Weight down,
                                 Tensor gateBias, Tensor upBias, Tensor downBias, int hidden) {

    /** Model width (input and output size). */
    public int width() {
        return gate.cols();
    }

    /** Number of stacked networks. */
    public int count() {
        return gate.rows() / hidden;
    }
}
