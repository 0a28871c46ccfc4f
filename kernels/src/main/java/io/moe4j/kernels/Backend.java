package io.moe4j.kernels;

import io.moe4j.kernels.ops.Activations;
import io.moe4j.kernels.ops.FeedForwardWeights;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.kernels.ops.Rope;

/**
 * The operations a transformer forward pass is made of, over a batch of token rows. The model code (engine) calls
 * these and nothing else for its arithmetic, so a backend for other hardware implements this interface.
 *
 * <p>Conventions: activations are row-major float arrays, one row of {@code width} floats per token, at an offset;
 * weights are {@link WeightMatrix} views of the model file; every operation computes each output element in an order
 * that does not depend on the number of rows (batch invariance: a token's result is bit-identical alone or in a
 * batch). Implementations may run operations in parallel internally; calls return when their results are in place.
 *
 * <p>The {@linkplain #cpu() CPU backend} works on host arrays directly. A device backend (CUDA, next in line) is
 * expected to upload each weight matrix once, keep the per-layer activations of one forward pass on the device and
 * transfer only what crosses this interface; the coarse operations ({@link #attention}, {@link #feedForward} with
 * routing, {@link #matmul(MatMul.Task...)} over several products) exist so that each layer needs few such crossings.
 */
public interface Backend {

    /** The SIMD CPU backend on the {@link Parallel} worker pool. */
    static Backend cpu() {
        return CpuBackend.INSTANCE;
    }

    /** Several independent products {@code out = x · Wᵀ} (rows of tokens times the matrix), in one go. */
    void matmul(MatMul.Task... tasks);

    /** {@code out[t] = x[t] · Wᵀ} for {@code n} token rows. */
    default void matmul(WeightMatrix w, float[] x, int xOffset, int n, float[] out, int outOffset) {
        matmul(new MatMul.Task(w, x, xOffset, n, out, outOffset));
    }

    /** {@code out[r] = rmsnorm(x[r]) * weight} for {@code rows} rows of {@code width} (weight may be null; in place allowed). */
    void rmsNorm(float[] x, int xOffset, int rows, int width, float[] weight, float eps, float[] out, int outOffset);

    /**
     * Rotary embedding in place: row r (of {@code rows}, {@code stride} floats apart from {@code offset}) holds
     * {@code heads} heads of {@code headDim}; it is rotated by the angles {@code cos/sin[r * rope.nRot()/2 ..]}
     * (from {@link Rope#angles}).
     */
    void rope(Rope rope, float[] x, int offset, int rows, int stride, int heads, int headDim, float[] cos, float[] sin);

    /** {@code x[i] += y[i]} for {@code n} floats. */
    void add(float[] x, int xOffset, float[] y, int yOffset, int n);

    /** Row {@code row} of {@code table} (an embedding) decoded into {@code out[outOffset ..]}. */
    void embed(WeightMatrix table, int row, float[] out, int outOffset);

    /** Adds {@code bias} (may be null: nothing to do) to each of {@code rows} rows of {@code width} floats of {@code x}. */
    void addBias(float[] x, int rows, int width, float[] bias);

    /**
     * Causal grouped-query attention of {@code n} tokens over their caches (see {@link io.moe4j.kernels.ops.Attention}).
     */
    void attention(int n, float[] q, int qStride, int nHead, int nKvHead, int headDim, KvBuffer[] keys, KvBuffer[] values,
                   int[] first, int[] last, float scale, float[] sinks, float[] out);

    /**
     * Feed-forward networks of a stack, with routing, plus an optional shared network: for each token t (of
     * {@code n}, rows of {@code ff.width()} in {@code x}) and each of its {@code k} choices s (ascending network ids),
     * network {@code experts[t * k + s]} is applied to x[t]; the outputs times {@code weights[t * k + s]}, then the
     * shared network's output times {@code sharedWeights[t]}, are summed in double in that order and the sum, rounded
     * to float, is added to {@code residual[t]} (as llama.cpp adds the mixed experts to the residual once). Tokens are
     * grouped by network, so each network's weights are read once per call and networks nobody chose are not read at
     * all. A dense FFN is the case of one network, k = 1, weight 1, no shared network.
     */
    void feedForward(FeedForwardWeights ff, Activations.Gated activation, float[] x, int n, int k, int[] experts,
                     float[] weights, FeedForwardWeights shared, float[] sharedWeights, float[] residual);
}
