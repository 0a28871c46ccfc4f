package io.moe4j.model;

import io.moe4j.kernels.Backend;
import io.moe4j.kernels.BlockCodec;
import io.moe4j.kernels.FeedForwardWeights;
import io.moe4j.kernels.LoadReport;
import io.moe4j.kernels.ModelSource;
import io.moe4j.kernels.MoeWeights;
import io.moe4j.kernels.Tensor;
import io.moe4j.kernels.Weight;
import io.moe4j.kernels.WeightLoader;
import io.moe4j.kernels.WeightMatrix;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensor;
import io.moe4j.gguf.ModelFormatException;

import java.util.Arrays;

/**
 * The tensors of a model, looked up by llama.cpp's GGUF names, checked against the hyper-parameters, and prepared by
 * the model's {@link Backend} ({@link WeightLoader}): how a matrix is laid out and where it lives is the backend's
 * business; this class only knows names and shapes.
 */
public final class ModelWeights {

    /**
     * One block. Grouped-query attention has wq, wk, wv (and optional biases and norms); latent attention has
     * {@code latent} instead (wq, wk, wv null). Either kind has wo. A block has either {@code dense} or {@code moe}.
     */
    public record Layer(
            Tensor attnNorm,
            Weight wq, Weight wk, Weight wv, Weight wo,
            Tensor bq, Tensor bk, Tensor bv, Tensor bo,
            Tensor qNorm, Tensor kNorm,
            Tensor sinks,
            Tensor ffnNorm,
            FeedForwardWeights dense,
            MoeWeights moe,
            LatentAttention latent) {

        /** Every matrix of the attention (for counting work and bytes). */
        public java.util.List<Weight> attentionMatrices() {
            java.util.List<Weight> all = new java.util.ArrayList<>();
            for (Weight m : latent != null
                    ? new Weight[]{latent.qA(), latent.qB(), latent.kvA(), latent.kB(), latent.vB(), wo}
                    : new Weight[]{wq, wk, wv, wo}) {
                if (m != null) all.add(m);
            }
            return all;
        }
    }

    /**
     * The tensors of DeepSeek's latent attention ({@link ModelConfig.Mla}): {@code qA} (attn_q_a) and its norm, or
     * both null when q_lora_rank is 0 and {@code qB} is the plain attn_q; {@code qB} gives per head
     * [q_nope | q_pe]; {@code kvA} (attn_kv_a_mqa) gives [c | k_pe], c normalised by {@code kvANorm};
     * {@code kB} (attn_k_b) stacks per head a kv_lora_rank × qk_nope matrix, {@code vB} (attn_v_b) per head a
     * v_head × kv_lora_rank one (llama.cpp's split of kv_b_proj, k_b already transposed).
     */
    public record LatentAttention(Weight qA, Tensor qANorm, Weight qB, Weight kvA, Tensor kvANorm, Weight kB, Weight vB) {
    }

    public final Weight tokenEmbedding;
    public final Tensor outputNorm;
    public final Weight output;
    /** Per-pair RoPE frequency divisors (rope_freqs.weight, Llama 3.1 style), or null. */
    public final float[] ropeFreqFactors;
    public final Layer[] layers;
    public final int vocabSize;
    /** What preparing the weights took (the CPU backend's layout cache: matrices mapped and copied). */
    public final LoadReport loadReport;

    /** The weights of {@code file} on the CPU backend. */
    public ModelWeights(GgufFile file, ModelConfig cfg) {
        this(file, cfg, Backend.cpu(), LoadProgress.NONE);
    }

    /** The weights of {@code file} prepared by {@code backend}, telling {@code progress} how far it has come. */
    public ModelWeights(GgufFile file, ModelConfig cfg, Backend backend, LoadProgress progress) {
        Loader l = new Loader(file, backend.loader(new ModelSource(file.path(), file.mapping(), file.dataStart(), file.arena())), progress);
        int nEmbd = cfg.embeddingLength();
        GgufTensor emb = file.requireTensor("token_embd.weight");
        this.vocabSize = (int) emb.dim(1);
        this.tokenEmbedding = l.table("token_embd.weight", nEmbd, vocabSize);
        this.outputNorm = l.vector("output_norm.weight", nEmbd);
        // The embedding is only looked up by rows; as the (tied) output head it is multiplied, so that is a second weight.
        this.output = l.matrix(file.tensor("output.weight") != null ? "output.weight" : "token_embd.weight", nEmbd, vocabSize);
        this.ropeFreqFactors = l.hostVector("rope_freqs.weight", cfg.ropeDim() / 2);
        this.layers = new Layer[cfg.blockCount()];
        Architecture arch = cfg.arch();
        int q = cfg.qDim(), kv = cfg.kvDim();
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            Tensor qNorm = null, kNorm = null;
            switch (arch.qkNorm()) {
                case PER_HEAD -> {
                    qNorm = l.vector(b + "attn_q_norm.weight", cfg.headDim());
                    kNorm = l.vector(b + "attn_k_norm.weight", cfg.headDim());
                }
                case WHOLE -> {
                    qNorm = l.vector(b + "attn_q_norm.weight", q);
                    kNorm = l.vector(b + "attn_k_norm.weight", kv);
                }
                case NONE -> {
                }
            }
            FeedForwardWeights dense = null;
            MoeWeights moe = null;
            if (cfg.isMoeLayer(i)) {
                Weight router = l.matrix(b + "ffn_gate_inp.weight", nEmbd, cfg.expertCount());
                Tensor routerBias = l.optionalVector(b + "ffn_gate_inp.bias", cfg.expertCount());
                FeedForwardWeights experts = l.experts(b, "_exps", nEmbd, cfg.expertCount()), shared = null;
                Tensor sharedGate = null;
                if (file.tensor(b + "ffn_gate_shexp.weight") != null) {
                    shared = l.experts(b, "_shexp", nEmbd, 1);
                    sharedGate = l.optionalVector(b + "ffn_gate_inp_shexp.weight", nEmbd);
                }
                Tensor selectionBias = l.optionalVector(b + "exp_probs_b.bias", cfg.expertCount());
                moe = new MoeWeights(router, routerBias, experts, shared, sharedGate, selectionBias);
            } else {
                dense = l.experts(b, "", nEmbd, 1);
            }
            Tensor attnNorm = l.vector(b + "attn_norm.weight", nEmbd);
            if (cfg.mla() != null) {
                ModelConfig.Mla m = cfg.mla();
                LatentAttention latent = l.latent(b, nEmbd, cfg.headCount(), m);
                layers[i] = new Layer(attnNorm, null, null, null,
                        l.matrix(b + "attn_output.weight", cfg.headCount() * m.valueHeadDim(), nEmbd),
                        null, null, null, l.optionalVector(b + "attn_output.bias", nEmbd), null, null, null,
                        l.vector(b + arch.ffnNormTensor() + ".weight", nEmbd), dense, moe, latent);
                continue;
            }
            layers[i] = new Layer(
                    attnNorm,
                    l.matrix(b + "attn_q.weight", nEmbd, q),
                    l.matrix(b + "attn_k.weight", nEmbd, kv),
                    l.matrix(b + "attn_v.weight", nEmbd, kv),
                    l.matrix(b + "attn_output.weight", q, nEmbd),
                    l.optionalVector(b + "attn_q.bias", q),
                    l.optionalVector(b + "attn_k.bias", kv),
                    l.optionalVector(b + "attn_v.bias", kv),
                    l.optionalVector(b + "attn_output.bias", nEmbd),
                    qNorm, kNorm,
                    l.optionalVector(b + "attn_sinks.weight", cfg.headCount()),
                    l.vector(b + arch.ffnNormTensor() + ".weight", nEmbd),
                    dense, moe, null);
        }
        this.loadReport = l.finish();
    }

    /** Looks tensors up by name and checks their shapes; errors name the file, tensor, expected and actual shape. */
    private static final class Loader {
        private final GgufFile file;
        private final WeightLoader backend;
        private final LoadProgress progress;
        /** Bytes of the file's tensors, and of the matrices made ready so far (the slow part of a load). */
        private final long total;
        private long done;

        Loader(GgufFile file, WeightLoader backend, LoadProgress progress) {
            this.file = file;
            this.backend = backend;
            this.progress = progress;
            this.total = file.tensors().values().stream().mapToLong(GgufTensor::byteSize).sum();
        }

        /** After the last matrix. */
        LoadReport finish() {
            LoadReport r = backend.finish();
            progress.loaded(total, total);
            return r;
        }

        private GgufTensor shaped(String name, long... dims) {
            GgufTensor t = file.requireTensor(name);
            long[] actual = t.dims();
            // ggml drops trailing dimensions of size 1 (e.g. a [n, 1] tensor may be stored as [n]).
            int rank = dims.length;
            while (rank > 1 && dims[rank - 1] == 1) rank--;
            int arank = actual.length;
            while (arank > 1 && actual[arank - 1] == 1) arank--;
            if (rank != arank || !Arrays.equals(Arrays.copyOf(dims, rank), Arrays.copyOf(actual, arank))) {
                throw new ModelFormatException(file.path() + ": tensor '" + name + "' has shape " + Arrays.toString(actual)
                        + ", expected " + Arrays.toString(dims) + " from the model's hyper-parameters");
            }
            if (!t.type().supported) {
                throw new ModelFormatException(file.path() + ": tensor '" + name + "' has type " + t.type()
                        + ", which moe4j does not support (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4)");
            }
            return t;
        }

        private static WeightMatrix view(GgufTensor t, int rows, int cols) {
            return new WeightMatrix(t.data(), t.type(), rows, cols);
        }

        /** A matrix of {@code rows} rows that is multiplied, cut by the backend at multiples of {@code sliceRows}. */
        private Weight matrix(GgufTensor t, int rows, int cols, int sliceRows) {
            Weight w = backend.matrix(view(t, rows, cols), sliceRows);
            done = Math.min(total, done + t.byteSize());
            progress.loaded(done, total);
            return w;
        }

        /** A matrix that is multiplied. */
        Weight matrix(String name, int cols, int rows) {
            return matrix(shaped(name, cols, rows), rows, cols, rows);
        }

        /**
         * {@code count} matrices of {@code rows} × {@code cols} stacked in one 3-D tensor (GGUF dims
         * {@code [cols, rows, count]}), cut by the backend at multiples of {@code rows}.
         */
        Weight stack(String name, int cols, int rows, int count) {
            return matrix(shaped(name, cols, rows, count), rows * count, cols, rows);
        }

        /** The latent attention of the block with prefix {@code b}, as llama.cpp's current conversion writes it. */
        LatentAttention latent(String b, int nEmbd, int heads, ModelConfig.Mla m) {
            if (file.tensor(b + "attn_kv_b.weight") != null && file.tensor(b + "attn_k_b.weight") == null) {
                throw new ModelFormatException(file.path() + ": tensor '" + b + "attn_kv_b.weight' is the unsplit kv_b_proj of an "
                        + "older conversion, which moe4j does not run (its latent attention needs attn_k_b and attn_v_b): "
                        + "convert the model again with a current convert_hf_to_gguf.py");
            }
            int qOut = heads * m.queryHead();
            Weight qA = null, qB;
            Tensor qANorm = null;
            if (m.qLoraRank() > 0) {
                qA = matrix(b + "attn_q_a.weight", nEmbd, m.qLoraRank());
                qANorm = vector(b + "attn_q_a_norm.weight", m.qLoraRank());
                qB = matrix(b + "attn_q_b.weight", m.qLoraRank(), qOut);
            } else {
                qB = matrix(b + "attn_q.weight", nEmbd, qOut);
            }
            return new LatentAttention(qA, qANorm, qB,
                    matrix(b + "attn_kv_a_mqa.weight", nEmbd, m.keyRow()),
                    vector(b + "attn_kv_a_norm.weight", m.kvLoraRank()),
                    stack(b + "attn_k_b.weight", m.qkNope(), m.kvLoraRank(), heads),
                    stack(b + "attn_v_b.weight", m.kvLoraRank(), m.valueHeadDim(), heads));
        }

        /** A matrix of which only rows are read (the embedding table). */
        Weight table(String name, int cols, int rows) {
            return backend.table(view(shaped(name, cols, rows), rows, cols));
        }

        Tensor vector(String name, int n) {
            return backend.vector(view(shaped(name, n), 1, n));
        }

        Tensor optionalVector(String name, int n) {
            return file.tensor(name) == null ? null : vector(name, n);
        }

        /** A vector the host needs itself (to compute RoPE's frequencies), or null when the file has none. */
        float[] hostVector(String name, int n) {
            if (file.tensor(name) == null) return null;
            GgufTensor t = shaped(name, n);
            float[] out = new float[n];
            BlockCodec.decode(t.type(), t.data(), 0, out, 0, n);
            return out;
        }

        /** gate/up/down (+ optional biases) of {@code count} experts whose hidden size is read off the gate tensor. */
        FeedForwardWeights experts(String prefix, String suffix, int nEmbd, int count) {
            String gateName = prefix + "ffn_gate" + suffix + ".weight";
            GgufTensor gate = file.requireTensor(gateName);
            int hidden = (int) gate.dim(1);
            if (hidden <= 0) throw new ModelFormatException(file.path() + ": tensor '" + gateName + "' has no hidden dimension");
            long[] upDims = count == 1 && suffix.isEmpty() ? new long[]{nEmbd, hidden} : new long[]{nEmbd, hidden, count};
            long[] downDims = count == 1 && suffix.isEmpty() ? new long[]{hidden, nEmbd} : new long[]{hidden, nEmbd, count};
            GgufTensor g = shaped(gateName, upDims);
            GgufTensor u = shaped(prefix + "ffn_up" + suffix + ".weight", upDims);
            GgufTensor d = shaped(prefix + "ffn_down" + suffix + ".weight", downDims);
            return new FeedForwardWeights(
                    matrix(g, hidden * count, nEmbd, hidden),
                    matrix(u, hidden * count, nEmbd, hidden),
                    matrix(d, nEmbd * count, hidden, nEmbd),
                    optionalStacked(prefix + "ffn_gate" + suffix + ".bias", hidden, count),
                    optionalStacked(prefix + "ffn_up" + suffix + ".bias", hidden, count),
                    optionalStacked(prefix + "ffn_down" + suffix + ".bias", nEmbd, count),
                    hidden);
        }

        private Tensor optionalStacked(String name, int n, int count) {
            if (file.tensor(name) == null) return null;
            return backend.vector(view(shaped(name, n, count), 1, n * count));
        }
    }
}
