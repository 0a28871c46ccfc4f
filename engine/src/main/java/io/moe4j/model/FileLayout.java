package io.moe4j.model;

import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How the files of an architecture are laid out, the part of its description that the engine finds in the file
 * itself but weights-tools ({@code synth}, {@code convert}, {@code export}, {@code upcycle}) must know to write one:
 * which optional GGUF tensors and metadata keys llama.cpp's convert_hf_to_gguf.py gives the architecture, and the
 * Hugging Face names (config.json classes and keys, checkpoint tensors) it maps them from. The tensors of the
 * attention and the FFN follow from {@link Architecture#attention()}, {@link Architecture#qkNorm()} and
 * {@link Architecture#ffnNormTensor()}; this record holds the rest.
 *
 * @param experts       whether a model of the architecture has routed experts
 * @param sharedExpert  the shared expert's form, if the architecture has one
 * @param qkvBias       whether the q, k and v projections have biases
 * @param traits        the architecture's other particulars of tensors and keys ({@link Trait})
 * @param hf            the Hugging Face names
 */
public record FileLayout(Experts experts, SharedExpert sharedExpert, Bias qkvBias, Set<Trait> traits, Hf hf) {

    public FileLayout {
        traits = traits.isEmpty() ? Set.of() : Collections.unmodifiableSet(EnumSet.copyOf(traits));
    }

    /** Particulars of an architecture's files, each one a few architectures have. */
    public enum Trait {
        /** gpt-oss's extra tensors: attn_output.bias, attn_sinks, the router's and the experts' biases */
        GPT_OSS_BIASES,
        /**
         * the expert size has its own key, {@code expert_feed_forward_length}; without it the expert size is
         * {@code feed_forward_length} (llama's Mixtral form, OLMoE)
         */
        EXPERT_FF_KEY,
        /** {@code attention.key_length} / {@code value_length} are written even when the head size is embedding / heads */
        HEAD_SIZE_KEYS,
        /** {@code vocab_size} and {@code rope.dimension_count} are written */
        VOCAB_SIZE_KEYS,
        /** the published configs give YaRN's beta_fast / beta_slow, which the converter copies */
        YARN_BETAS,
        /** the checkpoint's q and k rows are per head in halves, reordered to pairs for NORM RoPE (Llama) */
        PERMUTED_QK
    }

    public boolean has(Trait t) {
        return traits.contains(t);
    }

    public enum Experts {
        /** dense only */
        NEVER,
        /** dense or with experts (Llama and Mixtral share llama.cpp's llama architecture) */
        OPTIONAL,
        ALWAYS
    }

    public enum SharedExpert {
        NONE(null, null),
        /**
         * Qwen2-MoE: one shared expert of its own size ({@code expert_shared_feed_forward_length}), scaled by
         * sigmoid(ffn_gate_inp_shexp · x); HF mlp.shared_expert, mlp.shared_expert_gate and its size in config.json
         */
        GATED("mlp.shared_expert.", "shared_expert_intermediate_size"),
        /**
         * DeepSeek: {@code expert_shared_count} experts of the routed experts' size, stored as one FFN of their summed
         * size; HF mlp.shared_experts and their count in config.json
         */
        COUNTED("mlp.shared_experts.", "n_shared_experts");

        /** the checkpoint's module of the shared expert(s) under each layer */
        public final String hfModule;
        /** the config.json key of the shared expert's size (GATED) or count (COUNTED) */
        public final String hfKey;

        SharedExpert(String hfModule, String hfKey) {
            this.hfModule = hfModule;
            this.hfKey = hfKey;
        }
    }

    public enum Bias {
        NEVER,
        /** when config.json says {@code attention_bias} */
        FROM_CONFIG,
        ALWAYS
    }

    /** Which config.json a Hugging Face class is exported for. */
    public enum Variant {
        ANY,
        DENSE,
        MOE,
        /** routers with softmax scores */
        SOFTMAX,
        /** routers with sigmoid scores (and a selection bias) */
        SIGMOID,
        /** read by convert, never written by export */
        IMPORT_ONLY
    }

    /** How a checkpoint stores the routed experts (module names under each layer). */
    public enum HfExperts {
        /** block_sparse_moe.gate, block_sparse_moe.experts.{e}.w1 / w3 / w2 */
        MIXTRAL("block_sparse_moe.", "gate", "w1", "w3", "w2"),
        /** mlp.gate, mlp.experts.{e}.gate_proj / up_proj / down_proj */
        PER_EXPERT("mlp.", "gate", "gate_proj", "up_proj", "down_proj"),
        /** gpt-oss: mlp.router, mlp.experts.gate_up_proj (gate and up interleaved) and down_proj, all experts in one */
        FUSED("mlp.", "router", "gate_up_proj", "gate_up_proj", "down_proj");

        public final String module, router, gate, up, down;

        HfExperts(String module, String router, String gate, String up, String down) {
            this.module = module;
            this.router = router;
            this.gate = gate;
            this.up = up;
            this.down = down;
        }
    }

    /**
     * A Hugging Face model class of the architecture.
     *
     * @param architecture config.json {@code architectures[0]}
     * @param modelType    config.json {@code model_type}
     * @param variant      which models export writes as this class (the first that fits is taken)
     * @param preTokenizer llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer whose files do not record one
     * @param constants    config.json entries export writes as they are (values: Boolean, Integer, Double, List)
     */
    public record HfClass(String architecture, String modelType, Variant variant, String preTokenizer, Map<String, Object> constants) {
    }

    /**
     * The Hugging Face side.
     *
     * @param classes          the model classes, in export's order of preference
     * @param experts          how the checkpoint stores routed experts
     * @param expertCountKey   config.json key of the routed experts' count
     * @param expertFfKey      config.json key of one expert's hidden size, or null when intermediate_size is it
     * @param normTopKKey      config.json key of the top-k weights' renormalisation, or null when the class has none
     * @param topKKeys         config.json keys of the experts used per token (export writes each, convert reads the first present)
     */
    public record Hf(List<HfClass> classes, HfExperts experts, String expertCountKey, String expertFfKey,
                     String normTopKKey, List<String> topKKeys) {
        public Hf {
            classes = List.copyOf(classes);
            topKKeys = List.copyOf(topKKeys);
        }
    }

    /** The class export writes for a model with or without experts and with sigmoid or softmax router scores. */
    public HfClass exportClass(boolean moe, boolean sigmoid) {
        for (HfClass c : hf.classes()) {
            boolean fits = switch (c.variant()) {
                case ANY -> true;
                case DENSE -> !moe;
                case MOE -> moe;
                case SOFTMAX -> !sigmoid;
                case SIGMOID -> sigmoid;
                case IMPORT_ONLY -> false;
            };
            if (fits) return c;
        }
        throw new IllegalStateException("no Hugging Face class fits a model with" + (moe ? "" : "out") + " experts");
    }
}
