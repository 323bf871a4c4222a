package dev.sparksft.model;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import dev.sparksft.runtime.DiskWrites;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The architecture read from a Hugging Face {@code config.json} for the Llama family; what each
 * {@link Architecture} reads differently (biases, q/k norm, sliding window) it answers itself.
 *
 * @param slidingWindow the attention window of the sliding layers (a query sees this many keys
 *                      back, itself included): all of Mistral's, Gemma's by {@link #slidingLayer};
 *                      0 for full causal attention
 * @param raw the file as read, written back unchanged when the model is saved
 * @param forward how the forward pass departs from Llama's (Gemma's norms, soft-caps, layer pattern)
 */
public record ModelConfig(
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean outputBias,
        boolean qkNorm,
        int slidingWindow,
        Dtype torchDtype,
        ObjectNode raw,
        ForwardOptions forward) {

    /** The supported model_type values, one per {@link Architecture}. */
    public static final Set<String> MODEL_TYPES = Set.copyOf(Architecture.modelTypes());
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * {@code rope_scaling} with {@code rope_type} llama3, linear (inverse frequencies divided by
     * factor; the low/high factors and original length are llama3's only) or longrope (Phi-3:
     * inverse frequency i divided by shortFactor[i], or by longFactor[i] when a forward's positions
     * reach past originalMaxPositions, and cos / sin times attentionFactor); null for plain RoPE.
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositions, List<Double> shortFactor, List<Double> longFactor,
                              double attentionFactor) {
        public RopeScaling {
            shortFactor = shortFactor == null ? null : List.copyOf(shortFactor);
            longFactor = longFactor == null ? null : List.copyOf(longFactor);
        }

        /** llama3 or linear scaling. */
        public RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                           int originalMaxPositions) {
            this(type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions, null, null, 1.0);
        }
    }

    public ModelConfig {
        List<String> problems = new ArrayList<>();
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0 || headDim <= 0
                || vocabSize <= 0 || intermediateSize <= 0) {
            problems.add("hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, "
                    + "num_key_value_heads, head_dim and vocab_size must be positive");
        } else {
            if (numHeads % numKvHeads != 0) {
                problems.add("num_attention_heads (" + numHeads + ") must be a multiple of num_key_value_heads ("
                        + numKvHeads + ")");
            }
            if (headDim % 2 != 0) {
                problems.add("head_dim (" + headDim + ") must be even for rotary embeddings");
            }
        }
        if (slidingWindow < 0) {
            problems.add("sliding_window must be positive, got " + slidingWindow);
        }
        if (!(rmsNormEps > 0)) {
            problems.add("rms_norm_eps must be > 0, got " + rmsNormEps);
        }
        if (!(ropeTheta > 0)) {
            problems.add("rope_theta must be > 0, got " + ropeTheta);
        }
        if (forward != null && forward.slidingLayers().size() != numLayers) {
            problems.add("layer_types has " + forward.slidingLayers().size() + " entries for " + numLayers + " layers");
        }
        if (!problems.isEmpty()) {
            throw new UserError("invalid config.json: " + String.join("; ", problems));
        }
    }

    /** Reads {@code dir/config.json}. */
    public static ModelConfig load(Path dir) throws IOException {
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            root = JsonFiles.read(file);
        } catch (NoSuchFileException e) {
            throw new UserError("model directory " + dir + " has no config.json: point "
                    + "model_name_or_path at a Hugging Face model directory");
        }
        if (root == null || !root.isObject()) {
            throw new UserError(file + " is not a JSON object");
        }
        return fromJson((ObjectNode) root, file.toString());
    }

    static ModelConfig fromJson(ObjectNode file, String source) {
        String type = file.path("model_type").asText("");
        Architecture arch = Architecture.ofModelType(type);
        if (arch == null) {
            throw new UserError(source + ": model_type '" + type + "' is not supported; supported: "
                    + String.join(", ", MODEL_TYPES.stream().sorted().toList()));
        }
        ObjectNode c = arch.visionLanguage() ? Qwen2VlConfig.textConfig(file, source)
                : GemmaDefaults.textConfig(arch, file, source);
        int hidden = requireInt(c, "hidden_size", source);
        int heads = requireInt(c, "num_attention_heads", source);
        int kvHeads = c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads;
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        boolean attentionBias = c.path("attention_bias").asBoolean(false);
        boolean qkvBias = arch.qkvBias(attentionBias);
        boolean outputBias = arch.outputBias(attentionBias);
        if (c.path("mlp_bias").asBoolean(false)) {
            throw new UserError(source + ": mlp_bias=true is not supported");
        }
        int window = 0;
        if (arch.slidingWindowKey != null && c.hasNonNull(arch.slidingWindowKey)) {
            window = c.get(arch.slidingWindowKey).asInt();
        }
        if (arch.refusesUseSlidingWindow && c.path("use_sliding_window").asBoolean(false)) {
            throw new UserError(source + ": use_sliding_window=true (Qwen2 per-layer sliding windows) is "
                    + "not supported");
        }
        // transformers >= 4.56 writes "dtype", older versions "torch_dtype"; gemma3 writes it at the top level
        JsonNode dtype = file.hasNonNull("dtype") ? file.get("dtype") : file.hasNonNull("torch_dtype")
                ? file.get("torch_dtype") : c.hasNonNull("dtype") ? c.get("dtype") : c.get("torch_dtype");
        int numLayers = requireInt(c, "num_hidden_layers", source);
        if (c.hasNonNull("rope_parameters")) {   // rope_theta and rope_scaling would be read as absent
            throw new UserError(source + ": rope_parameters (transformers 5's RoPE layout) is not supported; write "
                    + "rope_theta and rope_scaling (rope_local_base_freq for Gemma 3) as transformers 4 does");
        }
        MoeConfig.read(arch, c, numLayers, requireInt(c, "intermediate_size", source), source);   // its problems, now
        if (arch.visionLanguage()) {
            Qwen2VlConfig.read(arch, file, headDim, hidden, source);   // the vision tower's and M-RoPE's problems, now
        }
        return new ModelConfig(type, hidden, requireInt(c, "intermediate_size", source),
                numLayers, heads, kvHeads, headDim,
                requireInt(c, "vocab_size", source), c.path("rms_norm_eps").asDouble(1e-6),
                c.path("rope_theta").asDouble(10000.0), arch == Architecture.PHI3 && isLongRope(c.get("rope_scaling"))
                        ? Phi3Rope.longRope(c, headDim, source) : ropeScaling(c.get("rope_scaling"), source),
                c.path("tie_word_embeddings").asBoolean(false), qkvBias, outputBias, arch.qkNorm, window,
                dtype != null && !dtype.isNull() ? Dtype.ofTorchName(dtype.asText()) : Dtype.F32, file,
                ForwardOptions.read(arch, c, numLayers, headDim, source));
    }

    /** The mixture-of-experts feedforward (qwen3_moe, mixtral), read from {@link #raw}; null for a dense model. */
    public MoeConfig moe() {
        return MoeConfig.read(architecture(), raw, numLayers, intermediateSize, "config.json");
    }

    /**
     * Qwen2-VL's and Qwen2.5-VL's vision tower, M-RoPE sections and image tokens, read from {@link #raw}; null
     * for a text-only architecture.
     */
    public Qwen2VlConfig visionLanguage() {
        return !architecture().visionLanguage() ? null
                : Qwen2VlConfig.read(architecture(), raw, headDim, hiddenSize, "config.json");
    }

    /** Whether decoder layer {@code layer} attends within {@link #slidingWindow()} (Mistral: all; Gemma: by layer_types). */
    public boolean slidingLayer(int layer) {
        return slidingWindow > 0 && forward.slidingLayers().get(layer);
    }

    /** The leading dimensions of each head that RoPE turns: head_dim, or int(head_dim * partial_rotary_factor) for Phi-3. */
    public int rotaryDim() {
        return Phi3Rope.rotaryDim(headDim, forward.partialRotaryFactor());
    }

    /** This config with another vocab_size (a resized embedding), in {@link #raw} too so that config.json says so. */
    public ModelConfig withVocabSize(int vocabSize) {
        ObjectNode c = raw.deepCopy();
        c.put("vocab_size", vocabSize);
        if (c.get("text_config") instanceof ObjectNode text && text.has("vocab_size")) {
            text.put("vocab_size", vocabSize);                          // transformers 5's layout reads it there
        }
        return fromJson(c, "config.json");
    }

    /** initializer_range, the std of transformers' normal init of new weights (PretrainedConfig's default 0.02). */
    public double initializerRange() {
        return raw.path("initializer_range").asDouble(0.02);
    }

    /** The architecture of {@link #modelType()}. */
    public Architecture architecture() {
        return Architecture.ofModelType(modelType);
    }

    private static boolean isLongRope(JsonNode s) {
        return s != null && s.isObject() && (s.hasNonNull("rope_type") ? s.get("rope_type") : s.path("type"))
                .asText("").equals("longrope");
    }

    private static RopeScaling ropeScaling(JsonNode s, String source) {
        if (s == null || s.isNull()) {
            return null;
        }
        String type = s.hasNonNull("rope_type") ? s.get("rope_type").asText() : s.path("type").asText("default");
        if (type.equals("default")) {
            return null;
        }
        if (type.equals("linear")) {
            if (!(s.path("factor").asDouble(0) > 0)) {
                throw new UserError(source + ": rope_scaling of type linear needs a positive 'factor', got "
                        + s.get("factor"));
            }
            return new RopeScaling(type, s.get("factor").asDouble(), 0, 0, 0);
        }
        if (!type.equals("llama3")) {
            throw new UserError(source + ": rope_scaling type '" + type
                    + "' is not supported (supported: llama3, linear, default)");
        }
        for (String k : List.of("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")) {
            if (!s.hasNonNull(k)) {
                throw new UserError(source + ": rope_scaling of type llama3 needs '" + k + "'");
            }
        }
        return new RopeScaling(type, s.get("factor").asDouble(), s.get("low_freq_factor").asDouble(),
                s.get("high_freq_factor").asDouble(), s.get("original_max_position_embeddings").asInt());
    }

    private static int requireInt(JsonNode c, String key, String source) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt()) {
            throw new UserError(source + ": missing or non-integer '" + key + "'");
        }
        return v.asInt();
    }

    /** Writes {@code dir/config.json} (the file as read, so unknown HF keys survive). */
    public void save(Path dir) throws IOException {
        DiskWrites.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(raw));
    }
}
