package dev.sparksft.model;

import java.util.List;

/**
 * The Hugging Face architectures this model class runs, and how each deviates from Llama. Every
 * one shares Llama's parameter names ({@link ModelLayout}; Gemma adds the pre/post-feedforward
 * norms, a gemma3 checkpoint stores the text model under {@code model.language_model.}, and
 * Phi-3 fuses q/k/v and gate/up, {@link #fusedProjections}; Qwen2-VL adds its vision tower's, {@link VisionLayout});
 * what differs is read from config.json here: which attention projections carry biases, whether
 * q and k are RMS-normalised per head, and whether attention is windowed. How the forward pass
 * differs (Gemma's norms, activation, soft-caps, layer pattern) is {@link ForwardOptions}. The
 * remaining fields are the defaults a new (tiny) model of the architecture is written with.
 */
public enum Architecture {
    LLAMA("llama", "LlamaForCausalLM", 500000.0, false, false, false, false, null, false),
    MISTRAL("mistral", "MistralForCausalLM", 10000.0, false, false, false, false, "sliding_window", false),
    /** Qwen2: q/k/v always have biases and o_proj never has (attention_bias is not read); per-layer windows are refused. */
    QWEN2("qwen2", "Qwen2ForCausalLM", 1000000.0, true, false, true, false, null, true),
    /** Qwen3: q_norm / k_norm over head_dim before RoPE, and head_dim written explicitly. */
    QWEN3("qwen3", "Qwen3ForCausalLM", 1000000.0, true, true, false, true, null, false),
    /** Gemma 2: sandwich norms, GeGLU, soft-capped attention and logits, sliding windows on every other layer. */
    GEMMA2("gemma2", "Gemma2ForCausalLM", 10000.0, true, true, false, false, "sliding_window", false),
    /** Gemma 3's text model: Gemma 2's block with q_norm / k_norm, 5 sliding layers to 1 global, a local RoPE base. */
    GEMMA3_TEXT("gemma3_text", "Gemma3ForCausalLM", 1000000.0, true, true, false, true, "sliding_window", false),
    /**
     * A Gemma 3 image-text checkpoint, text only: the text model's config under {@code text_config}, its weights
     * under {@code model.language_model.}; the vision tower is refused.
     */
    GEMMA3("gemma3", "Gemma3ForConditionalGeneration", 1000000.0, true, true, false, true, "sliding_window", false),
    /**
     * Phi-3 and Phi-4-mini: Llama's block with q/k/v fused into qkv_proj and gate/up into
     * gate_up_proj, no biases, RoPE on the first partial_rotary_factor of head_dim with longrope
     * scaling, and an optional sliding window on every layer.
     */
    PHI3("phi3", "Phi3ForCausalLM", 10000.0, false, false, false, false, "sliding_window", false),
    /** Qwen3-MoE: qwen3's attention, a mixture-of-experts feedforward ({@link MoeConfig}) on the sparse layers. */
    QWEN3_MOE("qwen3_moe", "Qwen3MoeForCausalLM", 1000000.0, false, true, false, true, null, true),
    /** Mixtral: Mistral's attention (sliding_window when set), a mixture-of-experts feedforward on every layer. */
    MIXTRAL("mixtral", "MixtralForCausalLM", 1000000.0, false, false, false, false, "sliding_window", false),
    /**
     * Qwen2-VL: Qwen2's decoder with M-RoPE (positions in time, height and width, {@link Qwen2VlConfig}) under a
     * vision tower ({@link VisionTower}: LayerNorm blocks, quick_gelu MLPs, a LayerNorm patch merger). The text
     * keys sit at the top level (hub checkpoints) or under text_config (transformers 5); the weights under
     * visual. and model. (hub) or model.visual. and model.language_model. (transformers 5), {@link ModelWeights}.
     */
    QWEN2_VL("qwen2_vl", "Qwen2VLForConditionalGeneration", 1000000.0, true, false, true, false, null, true),
    /** Qwen2.5-VL: Qwen2-VL with RMSNorm, SwiGLU vision blocks attending in windows but on fullatt_block_indexes. */
    QWEN2_5_VL("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", 1000000.0, true, false, true, false, null, true);

    /** config.json's {@code model_type}. */
    public final String modelType;
    /** config.json's {@code architectures[0]}. */
    public final String hfClass;
    /** The rope_theta a new model of this architecture gets. */
    public final double usualRopeTheta;
    /** tie_word_embeddings of a new model (the small Qwen models tie theirs). */
    public final boolean tiedByDefault;
    /** Whether a new model's config.json states head_dim (otherwise it is hidden_size / heads). */
    public final boolean writesHeadDim;
    /** True when the biases are fixed by the architecture (q/k/v on, o_proj off) rather than by attention_bias. */
    public final boolean fixedAttentionBiases;
    /** Per-head RMSNorm of q and k (q_norm, k_norm weights of shape (head_dim)). */
    public final boolean qkNorm;
    /** The config.json key of the attention window, or null when attention is always full. */
    public final String slidingWindowKey;
    /** Whether {@code use_sliding_window: true} (windows on some layers only) must be refused. */
    public final boolean refusesUseSlidingWindow;

    Architecture(String modelType, String hfClass, double usualRopeTheta, boolean tiedByDefault, boolean writesHeadDim,
                 boolean fixedAttentionBiases, boolean qkNorm, String slidingWindowKey, boolean refusesUseSlidingWindow) {
        this.modelType = modelType;
        this.hfClass = hfClass;
        this.usualRopeTheta = usualRopeTheta;
        this.tiedByDefault = tiedByDefault;
        this.writesHeadDim = writesHeadDim;
        this.fixedAttentionBiases = fixedAttentionBiases;
        this.qkNorm = qkNorm;
        this.slidingWindowKey = slidingWindowKey;
        this.refusesUseSlidingWindow = refusesUseSlidingWindow;
    }

    /** The architecture of config.json's {@code model_type}, or null when it is not one of these. */
    public static Architecture ofModelType(String modelType) {
        for (Architecture a : values()) {
            if (a.modelType.equals(modelType)) {
                return a;
            }
        }
        return null;
    }

    /** Every model_type, in declaration order: llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3, phi3,
     * qwen3_moe, mixtral, qwen2_vl, qwen2_5_vl. */
    public static List<String> modelTypes() {
        return java.util.Arrays.stream(values()).map(a -> a.modelType).toList();
    }

    /** The model_types of the text-only architectures (what a tiny model can be written as), in declaration order. */
    public static List<String> textModelTypes() {
        return java.util.Arrays.stream(values()).filter(a -> !a.visionLanguage()).map(a -> a.modelType).toList();
    }

    /** Whether a vision tower feeds image features into the decoder (Qwen2-VL, Qwen2.5-VL; gemma3's is refused). */
    public boolean visionLanguage() {
        return this == QWEN2_VL || this == QWEN2_5_VL;
    }

    /** Whether the forward pass is Gemma's ({@link ForwardOptions#gemma}) rather than Llama's. */
    public boolean isGemma() {
        return this == GEMMA2 || this == GEMMA3_TEXT || this == GEMMA3;
    }

    /** The config.json object holding the text model's keys: {@code text_config} for gemma3, else null (the file itself). */
    public String textConfigKey() {
        return this == GEMMA3 ? "text_config" : null;
    }

    /**
     * The prefix of the text model's weights in the checkpoint, "model." ({@link ModelLayout}'s own) but for gemma3.
     * A Qwen2-VL directory may hold either layout; {@link ModelWeights#load} reads which from the names stored, and
     * this is the one a new model is written in (the hub's).
     */
    public String checkpointPrefix() {
        return this == GEMMA3 ? "model.language_model." : "model.";
    }

    /** Biases on q_proj, k_proj and v_proj, given config.json's attention_bias (Phi-3 has none and reads no key). */
    public boolean qkvBias(boolean attentionBias) {
        return this != PHI3 && (fixedAttentionBiases || attentionBias);
    }

    /** A bias on o_proj, given config.json's attention_bias. */
    public boolean outputBias(boolean attentionBias) {
        return this != PHI3 && !fixedAttentionBiases && attentionBias;
    }

    /**
     * Whether the layer's projections are fused as Phi-3 stores them: self_attn.qkv_proj
     * ((heads + 2 kv_heads) x head_dim, hidden), rows q then k then v, and mlp.gate_up_proj
     * (2 x intermediate, hidden), rows gate then up.
     */
    public boolean fusedProjections() {
        return this == PHI3;
    }
}
