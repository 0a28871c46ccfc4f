package io.moe4j.kernels;

import io.moe4j.kernels.cpu.CpuBackend;

import java.util.List;
import java.util.Locale;

/**
 * Where a transformer's arithmetic runs, and the operations it is made of, over a batch of token rows. A backend
 * owns its memory: the forward pass allocates its activations as {@link Tensor}s here, has the model's weights
 * prepared here ({@link #loader}: layouts are the backend's business), takes KV pages from the backend's
 * {@link KvPool}, and calls the operations below on them. Token ids and positions go in as host arrays; logits come
 * out through {@link #read}. The engine does no arithmetic of its own.
 *
 * <p>Conventions: a tensor holds row-major floats, one row of {@code width} floats per token, addressed by a float
 * offset; every operation computes each output element in an order that does not depend on the number of rows
 * (batch invariance: a token's result is bit-identical alone or in a batch). Operations may run in parallel
 * internally and return when their results are in place. Null tensors stand for optional weights (no bias, no norm
 * weight) where a parameter says so.
 *
 * <p>One conformance suite (the kernels module's {@code BackendConformance} tests) holds every implementation to a
 * plain scalar reference.
 */
public interface Backend {

    /** The SIMD CPU backend on the {@link Threads} worker pool. */
    static Backend cpu() {
        return CpuBackend.INSTANCE;
    }

    /**
     * A CPU backend that keeps the prepared (interleaved) layouts of the models it loads in {@code layoutCache}, so
     * that a later load maps them instead of copying again; null: no cache. {@link #cpu()} uses the folder named by
     * {@code -Dmoe4j.layoutCache} or {@code MOE4J_LAYOUT_CACHE}.
     */
    static Backend cpu(java.nio.file.Path layoutCache) {
        return new CpuBackend(layoutCache);
    }

    /** The devices {@link #open} knows, whether or not this build or machine can run them. */
    List<String> DEVICES = List.of("cpu", "cuda");

    /**
     * The backend of {@code device} ({@link #DEVICES}). An unknown device, or one this build or machine cannot run,
     * is an {@link IllegalArgumentException} that says which and why.
     */
    static Backend open(String device) {
        String d = device == null ? "cpu" : device.trim().toLowerCase(Locale.ROOT);
        return switch (d) {
            case "cpu" -> cpu();
            case "cuda" -> throw new IllegalArgumentException("device 'cuda': this build of moe4j has no CUDA backend; "
                    + "use --device cpu");
            default -> throw new IllegalArgumentException("unknown device '" + device + "': expected one of " + String.join(", ", DEVICES));
        };
    }

    /** The device name ({@code cpu}, ...). */
    String name();

    // ---- memory ------------------------------------------------------------------------------------------------

    /** A tensor of {@code floats} zeros. */
    Tensor allocate(long floats);

    /** A tensor holding a copy of {@code values}; null for null. */
    Tensor upload(float[] values);

    /** Copies {@code n} floats from the host into {@code dst} at float offset {@code offset}. */
    void write(Tensor dst, long offset, float[] src, int srcOffset, int n);

    /** Copies {@code n} floats of {@code src} from float offset {@code offset} to the host. */
    void read(Tensor src, long offset, float[] dst, int dstOffset, int n);

    /** Prepares the weights of one model file for this backend. */
    WeightLoader loader(ModelSource source);

    /** A pool of KV pages in this backend's memory holding at most {@code budgetBytes} in all. */
    KvPool kvPool(long budgetBytes);

    /** The pool of caches made without one (tests, tools): as much as this backend's memory allows. */
    KvPool defaultKvPool();

    /** Zeroed expert selection counters for {@link #moe}. */
    ExpertCounts expertCounts(int layers, int experts);

    // ---- operations --------------------------------------------------------------------------------------------

    /** One product {@code out[outOffset + t * w.rows() ..] = x[xOffset + t * w.cols() ..] · Wᵀ} for {@code n} token rows. */
    record Product(Weight w, Tensor x, int xOffset, int n, Tensor out, int outOffset) {
        public Product {
            if (x.size() < xOffset + (long) n * w.cols() || out.size() < outOffset + (long) n * w.rows()) {
                throw new IllegalArgumentException("tensors of " + x.size() + " and " + out.size() + " floats cannot hold "
                        + n + " rows of " + w.cols() + " in and " + w.rows() + " out");
            }
        }
    }

    /** Several independent products in one go (they may share inputs, never outputs). */
    void matmul(Product... products);

    /** {@code out[t] = x[t] · Wᵀ} for {@code n} token rows. */
    default void matmul(Weight w, Tensor x, int xOffset, int n, Tensor out, int outOffset) {
        matmul(new Product(w, x, xOffset, n, out, outOffset));
    }

    /**
     * One matrix per head, stacked in {@code w} ({@code heads} matrices of {@code R = w.rows() / heads} rows, head
     * h's from row {@code h * R}), applied to that head's slice of each token row: for token t in [0, n) and head h,
     * {@code out[outOffset + t * outStride + h * outHeadStride + r] = Σ_i W[h * R + r][i] · x[xOffset + t * xStride
     * + h * xHeadStride + i]} for r in [0, R), i in [0, w.cols()). Nothing else of {@code out} is written. DeepSeek's
     * latent attention multiplies each head's query by its k_b and each head's output by its v_b this way.
     */
    void matmulHeads(Weight w, int heads, Tensor x, int xOffset, int xStride, int xHeadStride, int n,
                     Tensor out, int outOffset, int outStride, int outHeadStride);

    /**
     * Copies {@code rows} rows of {@code width} floats: {@code dst[dstOffset + r * dstStride + i] =
     * src[srcOffset + r * srcStride + i]} (the two ranges must not overlap; nothing else of {@code dst} is written).
     */
    void copyRows(Tensor src, int srcOffset, int srcStride, Tensor dst, int dstOffset, int dstStride, int rows, int width);

    /** Rows {@code tokens[0..n)} of {@code table} (an embedding) decoded into consecutive rows of {@code out}. */
    void embed(Weight table, int[] tokens, int n, Tensor out);

    /** {@code out[r] = rmsnorm(x[r]) * weight} for {@code rows} rows of {@code width} (weight may be null; in place allowed). */
    void rmsNorm(Tensor x, int xOffset, int rows, int width, Tensor weight, float eps, Tensor out, int outOffset);

    /**
     * The rotation angles of {@code n} tokens at {@code positions}: {@code rope.nRot() / 2} cosines and sines per
     * token into {@code cos} and {@code sin}, for {@link #rope}.
     */
    void ropeAngles(Rope rope, int[] positions, int n, Tensor cos, Tensor sin);

    /**
     * Rotary embedding in place: row r (of {@code rows}, {@code stride} floats apart from {@code offset}) holds
     * {@code heads} heads of {@code headDim}; it is rotated by the angles of token r ({@link #ropeAngles}).
     */
    void rope(Rope rope, Tensor x, int offset, int rows, int stride, int heads, int headDim, Tensor cos, Tensor sin);

    /** {@code x[i] += y[i]} for {@code n} floats. */
    void add(Tensor x, int xOffset, Tensor y, int yOffset, int n);

    /** Adds {@code bias} (may be null: nothing to do) to each of {@code rows} rows of {@code width} floats of {@code x}. */
    void addBias(Tensor x, int rows, int width, Tensor bias);

    /**
     * Stores row t of {@code k} and of {@code v} ({@code width} floats each, rows {@code width} apart) as position
     * {@code positions[t]} of {@code keys[t]} and {@code values[t]}, for t in [0, n); the positions' pages must be
     * {@linkplain KvStore#reserve reserved}. Quantized stores round as their type does.
     */
    void appendKv(int n, Tensor k, Tensor v, int width, KvStore[] keys, KvStore[] values, int[] positions);

    /**
     * {@link #appendKv} for stores of keys only, whose values are the first values of each key row
     * ({@link #latentAttention}): row t of {@code k} as position {@code positions[t]} of {@code keys[t]}.
     */
    void appendKeys(int n, Tensor k, int width, KvStore[] keys, int[] positions);

    /**
     * A context shift: drops positions {@code [keep, keep + discard)} of a sequence from the stores of every layer
     * ({@code keys[l]}, {@code values[l]}, each holding the positions below {@code length}). Positions
     * {@code [keep + discard, length)} move to {@code [keep, length - discard)} and those from
     * {@code length - discard} on are dropped, as {@link KvStore#truncate} drops them. Keys are rotated by
     * {@code -discard} positions with {@link Rope#shiftAngles}: the angle difference alone, in {@code rope}'s style,
     * over its first {@code nRot} dimensions of each head (the magnitude YaRN gave them when they were written stays
     * as it is); a null {@code rope} moves them as they are (layers without rotary embedding). Values move as
     * stored, bit for bit. Rotated keys are rounded as their type rounds on write: F16 to float16, Q8_0 dequantized,
     * rotated and quantized again block by block (as llama.cpp shifts a quantized cache); blocks past the rotated
     * dimensions move as stored.
     *
     * <p>A store whose leading positions were given back ({@link KvStore#firstStored} f &gt; 0, a sliding window)
     * moves what it holds, and holds afterwards the positions from {@code f <= keep ? f : max(keep, f - discard)}
     * on; moved rows may need pages again below f, and a page shared with another store is copied before it is
     * written. When the pool has no room for those pages nothing changes and the answer is false.
     */
    boolean shiftKv(Rope rope, KvStore[] keys, KvStore[] values, int keep, int discard, int length);

    /**
     * Causal grouped-query attention: token t's query (row t of {@code q}, {@code qStride} floats apart, {@code nHead}
     * heads of {@code headDim}) attends to positions {@code [first[t], last[t]]} of {@code keys[t]}/{@code values[t]}
     * (query head h reads KV head {@code h / (nHead / nKvHead)}), with logits times {@code scale} and, when
     * {@code sinks} is not null, one extra logit per head that takes probability mass but adds no value (gpt-oss).
     * Output rows of {@code nHead * headDim} floats go to {@code out}.
     */
    void attention(int n, Tensor q, int qStride, int nHead, int nKvHead, int headDim, KvStore[] keys, KvStore[] values,
                   int[] first, int[] last, float scale, Tensor sinks, Tensor out);

    /**
     * Causal attention whose values are the first {@code valueDim} values of each key row, so that a cache stores
     * each position once (DeepSeek's multi-head latent attention in llama.cpp's absorbed form: the row is
     * [c | rope(k_pe)], the value c). {@code keys[t]} has one head of {@code keyDim}; token t's {@code nHead} query
     * heads of {@code keyDim} (row t of {@code q}, {@code qStride} floats apart) all attend to positions
     * {@code [first[t], last[t]]} of it, with logits times {@code scale}. Output rows of {@code nHead * valueDim}
     * floats go to {@code out}. A Q8_0 store needs {@code valueDim} to be whole blocks of 32.
     */
    void latentAttention(int n, Tensor q, int qStride, int nHead, int keyDim, int valueDim, KvStore[] keys,
                         int[] first, int[] last, float scale, Tensor out);

    /**
     * A dense gated feed-forward network (a stack of one) applied to {@code n} rows of {@code x}, its output added
     * to {@code residual}.
     */
    void feedForward(FeedForwardWeights ff, Activation activation, Tensor x, int n, Tensor residual);

    /**
     * A mixture-of-experts block on {@code n} normalised rows {@code x}: router product and bias, gating, top-k
     * (ties to the lower id) and the weights as {@code routing} says; each selected expert's output times its weight,
     * then the shared expert's times its gate, summed in double in ascending expert order, rounded to float once and
     * added to {@code residual}. Tokens are grouped by expert, so each active expert's weights are read once per call
     * and experts nobody chose are not read at all. {@code counts} (may be null) gets every selection of layer
     * {@code layer}; {@code trace} (may be null) gets every decision on the host.
     */
    void moe(int layer, MoeWeights w, Routing routing, Activation activation, Tensor x, int n, Tensor residual,
             ExpertCounts counts, RoutingTrace trace);
}
