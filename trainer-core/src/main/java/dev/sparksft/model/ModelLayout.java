package dev.sparksft.model;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The Hugging Face parameter names of the Llama family, and the only place that knows them:
 * <pre>
 *   model.embed_tokens.weight                      (vocab, hidden)
 *   model.layers.{i}.input_layernorm.weight        (hidden)
 *   model.layers.{i}.self_attn.q_proj.weight       (heads x head_dim, hidden)       .bias (heads x head_dim)
 *   model.layers.{i}.self_attn.k_proj.weight       (kv_heads x head_dim, hidden)    .bias (kv_heads x head_dim)
 *   model.layers.{i}.self_attn.v_proj.weight       (kv_heads x head_dim, hidden)    .bias (kv_heads x head_dim)
 *   model.layers.{i}.self_attn.q_norm.weight       (head_dim)          k_norm likewise
 *   model.layers.{i}.self_attn.o_proj.weight       (hidden, heads x head_dim)       .bias (hidden)
 *   model.layers.{i}.post_attention_layernorm.weight  (hidden)
 *   model.layers.{i}.pre_feedforward_layernorm.weight (hidden)      Gemma; post_feedforward_ likewise
 *   model.layers.{i}.mlp.gate_proj.weight          (intermediate, hidden)           up_proj likewise
 *   model.layers.{i}.mlp.down_proj.weight          (hidden, intermediate)
 *   model.layers.{i}.self_attn.qkv_proj.weight     ((heads + 2 kv_heads) x head_dim, hidden)   Phi-3, for q/k/v
 *   model.layers.{i}.mlp.gate_up_proj.weight       (2 x intermediate, hidden)                  Phi-3, for gate/up
 *   model.norm.weight                              (hidden)
 *   lm_head.weight                                 (vocab, hidden), absent when tie_word_embeddings
 * </pre>
 * Qwen2-VL's vision tower adds its own under "visual." ({@link VisionLayout}, {@link #partOf}).
 * The architectures share these names; which of the optional ones exist is the
 * {@link Architecture}'s deviation, read into the {@link ModelConfig}. A gemma3 checkpoint stores
 * the text model's "model." names under "model.language_model." ({@link #storedName}): the names
 * are mapped where files are read and written, and are these everywhere else. So a question about a name
 * alone (its layer, its module, its optimizer group) is a static method, and a question that
 * needs the config (which tensors exist, their shapes, the size of an attention head) is asked of
 * an instance. The fine-tuning methods' name rules (weight decay groups, Muon, Adam-mini, BAdam,
 * freeze, PEFT's modules_to_save) are here too, each as its reference implementation states it.
 */
public final class ModelLayout {
    public static final String EMBEDDING = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";
    /**
     * The nn.Linear modules of a decoder layer (find_all_linear_modules without lm_head, leaves as
     * PEFT matches them), of every architecture: Llama's seven, Phi-3's fused qkv_proj and
     * gate_up_proj, and a mixture of experts' router "gate" (an nn.Linear in transformers 4.x, so
     * LLaMA-Factory's "all" includes it) and Mixtral's expert w1/w2/w3 (Qwen3-MoE's experts reuse
     * gate_proj/up_proj/down_proj). The grammars share no leaf name, so a name alone still tells
     * its module; which of them a model has is {@link #layerLinears()}.
     */
    public static final List<String> LAYER_LINEARS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
            "up_proj", "down_proj", "qkv_proj", "gate_up_proj", "gate", "w1", "w2", "w3");
    private static final List<String> UNFUSED_LINEARS = LAYER_LINEARS.subList(0, 7);
    /** Phi-3's layer linears, in its modules' order. */
    private static final List<String> FUSED_LINEARS = List.of("qkv_proj", "o_proj", "gate_up_proj", "down_proj");
    /** A mixture of experts' layer linears: Llama's (dense layers, attention, Qwen3-MoE's experts), the router, Mixtral's experts. */
    private static final List<String> MOE_LINEARS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
            "up_proj", "down_proj", "gate", "w1", "w2", "w3");
    private static final Set<String> ATTENTION_LINEARS = Set.of("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj");
    private static final String LAYERS = "model.layers.";
    /** Where gemma3's and a transformers-5 Qwen2-VL file keep the text model's "model." names. */
    static final String LANGUAGE_MODEL_PREFIX = "model.language_model.";
    private static final String WEIGHT = ".weight";
    /** transformers' get_decay_parameter_names: biases and norm weights get no weight decay. */
    private static final Pattern NO_DECAY = Pattern.compile("bias|layernorm|rmsnorm|(?:^|\\.)norm(?:$|\\.)|_norm(?:$|\\.)");

    private final ModelConfig cfg;

    public ModelLayout(ModelConfig cfg) {
        this.cfg = cfg;
    }

    /** The name and shape of every parameter a model of this config has, in HF order. */
    public Map<String, long[]> expectedShapes() {
        long h = cfg.hiddenSize();
        long q = (long) cfg.numHeads() * cfg.headDim();
        long kv = (long) cfg.numKvHeads() * cfg.headDim();
        long inter = cfg.intermediateSize();
        MoeConfig moe = cfg.moe();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put(EMBEDDING, new long[] {cfg.vocabSize(), h});
        for (int i = 0; i < cfg.numLayers(); i++) {
            shapes.put(inputNorm(i), new long[] {h});
            if (fused()) {
                putFusedLayer(shapes, i, h, q, kv, inter);
                continue;
            }
            shapes.put(linear(i, "q_proj") + WEIGHT, new long[] {q, h});
            shapes.put(linear(i, "k_proj") + WEIGHT, new long[] {kv, h});
            shapes.put(linear(i, "v_proj") + WEIGHT, new long[] {kv, h});
            if (cfg.qkvBias()) {
                shapes.put(linear(i, "q_proj") + ".bias", new long[] {q});
                shapes.put(linear(i, "k_proj") + ".bias", new long[] {kv});
                shapes.put(linear(i, "v_proj") + ".bias", new long[] {kv});
            }
            if (cfg.qkNorm()) {
                shapes.put(queryNorm(i), new long[] {cfg.headDim()});
                shapes.put(keyNorm(i), new long[] {cfg.headDim()});
            }
            shapes.put(linear(i, "o_proj") + WEIGHT, new long[] {h, q});
            if (cfg.outputBias()) {
                shapes.put(linear(i, "o_proj") + ".bias", new long[] {h});
            }
            shapes.put(postAttentionNorm(i), new long[] {h});
            if (cfg.forward().sandwichNorms()) {
                shapes.put(preFeedforwardNorm(i), new long[] {h});
                shapes.put(postFeedforwardNorm(i), new long[] {h});
            }
            if (moe != null && moe.sparse(i)) {
                putExperts(shapes, moe, i, h);
                continue;
            }
            shapes.put(linear(i, "gate_proj") + WEIGHT, new long[] {inter, h});
            shapes.put(linear(i, "up_proj") + WEIGHT, new long[] {inter, h});
            shapes.put(linear(i, "down_proj") + WEIGHT, new long[] {h, inter});
        }
        shapes.put(FINAL_NORM, new long[] {h});
        if (!cfg.tieWordEmbeddings()) {
            shapes.put(LM_HEAD, new long[] {cfg.vocabSize(), h});
        }
        Qwen2VlConfig vl = cfg.visionLanguage();
        if (vl != null) {
            shapes.putAll(VisionLayout.expectedShapes(vl.vision()));   // visual.*
        }
        return shapes;
    }

    /** A sparse layer's router (experts, hidden) and each expert's gate and up (inter, hidden) and down (hidden, inter). */
    private static void putExperts(Map<String, long[]> shapes, MoeConfig moe, int layer, long h) {
        long inter = moe.expertIntermediate();
        shapes.put(moe.router(layer) + WEIGHT, new long[] {moe.numExperts(), h});
        for (int e = 0; e < moe.numExperts(); e++) {
            List<String> leaves = moe.expertLeaves();
            shapes.put(moe.expertLinear(layer, e, leaves.get(0)) + WEIGHT, new long[] {inter, h});
            shapes.put(moe.expertLinear(layer, e, leaves.get(1)) + WEIGHT, new long[] {inter, h});
            shapes.put(moe.expertLinear(layer, e, leaves.get(2)) + WEIGHT, new long[] {h, inter});
        }
    }

    /** Phi-3's layer i, in its modules' order: qkv_proj, o_proj, the norm, gate_up_proj, down_proj. */
    private void putFusedLayer(Map<String, long[]> shapes, int i, long h, long q, long kv, long inter) {
        shapes.put(linear(i, "qkv_proj") + WEIGHT, new long[] {q + 2 * kv, h});   // rows: q, k, v
        shapes.put(linear(i, "o_proj") + WEIGHT, new long[] {h, q});
        shapes.put(postAttentionNorm(i), new long[] {h});
        shapes.put(linear(i, "gate_up_proj") + WEIGHT, new long[] {2 * inter, h}); // rows: gate, up
        shapes.put(linear(i, "down_proj") + WEIGHT, new long[] {h, inter});
    }

    private boolean fused() {
        return cfg.architecture().fusedProjections();
    }

    /** The linear modules of this model's decoder layers: what lora_target / oft_target {@code all} adapts. */
    public List<String> layerLinears() {
        return fused() ? FUSED_LINEARS : cfg.moe() != null ? MOE_LINEARS : UNFUSED_LINEARS;
    }

    /** Whether the linear module {@code leaf} ("q_proj", ...) of a layer has a bias in this config. */
    public boolean hasBias(String leaf) {
        return leaf.equals("o_proj") ? cfg.outputBias() : cfg.qkvBias() && ATTENTION_LINEARS.contains(leaf);
    }

    /** Weights of one attention head in q_proj or k_proj: head_dim x hidden_size (Adam-mini's block). */
    public long attentionHeadNumel() {
        return (long) cfg.headDim() * cfg.hiddenSize();
    }

    /** "model.layers.3." for layer 3: every parameter of the layer starts with it. */
    public static String layerPrefix(int layer) {
        return LAYERS + layer + ".";
    }

    /** The decoder layer a parameter belongs to, or -1 (embedding, final norm, head). */
    public static int layerIndex(String name) {
        if (!name.startsWith(LAYERS)) {
            return -1;
        }
        int end = name.indexOf('.', LAYERS.length());
        if (end <= LAYERS.length()) {
            return -1;
        }
        String digits = name.substring(LAYERS.length(), end);
        return digits.chars().allMatch(Character::isDigit) ? Integer.parseInt(digits) : -1;
    }

    /** The module of one of {@link #LAYER_LINEARS} in layer {@code layer}: "model.layers.3.self_attn.q_proj". */
    public static String linear(int layer, String leaf) {
        if (!LAYER_LINEARS.contains(leaf)) {
            throw new IllegalStateException(leaf + " is not a linear module of a decoder layer");
        }
        return layerPrefix(layer) + (ATTENTION_LINEARS.contains(leaf) ? "self_attn." : "mlp.") + leaf;
    }

    public static String inputNorm(int layer) {
        return layerPrefix(layer) + "input_layernorm.weight";
    }

    public static String postAttentionNorm(int layer) {
        return layerPrefix(layer) + "post_attention_layernorm.weight";
    }

    /** Gemma's norm of the MLP's input, (hidden) (post_attention_layernorm there normalises the attention output). */
    public static String preFeedforwardNorm(int layer) {
        return layerPrefix(layer) + "pre_feedforward_layernorm.weight";
    }

    /** Gemma's norm of the MLP's output, (hidden). */
    public static String postFeedforwardNorm(int layer) {
        return layerPrefix(layer) + "post_feedforward_layernorm.weight";
    }

    /**
     * The name a parameter has in the checkpoint files: "model.x" under {@code checkpointPrefix}
     * ({@link Architecture#checkpointPrefix()}: "model.language_model.x" for gemma3 and a transformers-5
     * Qwen2-VL file), others (lm_head) as they are; where the text model is under "model.language_model.",
     * Qwen2-VL's vision tower "visual.x" is under "model.visual.x".
     */
    public static String storedName(String name, String checkpointPrefix) {
        if (name.startsWith(VisionLayout.PREFIX)) {
            return checkpointPrefix.equals(LANGUAGE_MODEL_PREFIX) ? "model." + name : name;
        }
        return name.startsWith("model.") ? checkpointPrefix + name.substring("model.".length()) : name;
    }

    /** The inverse of {@link #storedName}; null for a stored name outside the model (gemma3's vision tower). */
    public static String canonicalName(String stored, String checkpointPrefix) {
        if (stored.startsWith(checkpointPrefix)) {
            return "model." + stored.substring(checkpointPrefix.length());
        }
        if (checkpointPrefix.equals(LANGUAGE_MODEL_PREFIX) && stored.startsWith("model." + VisionLayout.PREFIX)) {
            return stored.substring("model.".length());
        }
        return stored.startsWith("model.") ? null : stored;
    }

    /** The parts of a vision-language model that LLaMA-Factory freezes separately. */
    public enum Part {
        /** visual.patch_embed and visual.blocks: what freeze_vision_tower (default true) freezes */
        VISION_TOWER,
        /** visual.merger, the patch merger: what freeze_multi_modal_projector (default true) freezes */
        MULTI_MODAL_PROJECTOR,
        /** model.* and lm_head, every parameter of a text-only model: what freeze_language_model freezes */
        LANGUAGE_MODEL
    }

    /**
     * The part parameter {@code name} (a name of this layout, not a stored one) belongs to: its vision tower,
     * its multi-modal projector or its language model. The layer linears ({@link #layerLinearModule}, what
     * lora_target "all" adapts) are the language model's only, as LLaMA-Factory's "all" leaves out the frozen
     * vision tower and projector; the vision linears are {@link VisionLayout#towerLinears} and
     * {@link VisionLayout#mergerLinears}.
     */
    public static Part partOf(String name) {
        if (name.startsWith(VisionLayout.MERGER)) {
            return Part.MULTI_MODAL_PROJECTOR;
        }
        return name.startsWith(VisionLayout.PREFIX) ? Part.VISION_TOWER : Part.LANGUAGE_MODEL;
    }

    /** qwen3's per-head RMSNorm of the queries, (head_dim). */
    public static String queryNorm(int layer) {
        return layerPrefix(layer) + "self_attn.q_norm.weight";
    }

    /** qwen3's per-head RMSNorm of the keys, (head_dim). */
    public static String keyNorm(int layer) {
        return layerPrefix(layer) + "self_attn.k_norm.weight";
    }

    /**
     * "model.layers.0.self_attn.q_proj" for the weight of one of {@link #LAYER_LINEARS} in a decoder layer, else
     * null (Qwen2.5-VL's vision blocks reuse gate_proj, up_proj, down_proj, outside model.layers.).
     */
    public static String layerLinearModule(String param) {
        if (!param.endsWith(WEIGHT) || !param.startsWith(LAYERS)) {
            return null;
        }
        String module = param.substring(0, param.length() - WEIGHT.length());
        return LAYER_LINEARS.contains(leaf(module)) ? module : null;
    }

    /** The last component of a module's name: "q_proj" for "model.layers.0.self_attn.q_proj". */
    public static String leaf(String module) {
        return module.substring(module.lastIndexOf('.') + 1);
    }

    /** The module of an nn.Linear weight, the layer linears' and lm_head's ("lm_head"); else null. */
    public static String linearModule(String param) {
        return param.equals(LM_HEAD) ? "lm_head" : layerLinearModule(param);
    }

    /** Weight decay groups as transformers' get_decay_parameter_names: none for biases and norms. */
    public static boolean decays(String param) {
        return !NO_DECAY.matcher(param.toLowerCase(Locale.ROOT)).find();
    }

    /**
     * The embedding or the LM head, by LLaMA-Factory's substring rule ("embed", "lm_head"): BAdam's
     * ratio mode keeps them frozen, Muon and Adam-mini give them plain Adam.
     */
    public static boolean isEmbeddingOrHead(String param) {
        return param.contains("embed") || param.contains("lm_head");
    }

    /** The 2-D hidden matrices Muon orthogonalises (LLaMA-Factory: ndim 2, not embedding or head). */
    public static boolean isHiddenMatrix(String param, long dims) {
        return dims == 2 && !isEmbeddingOrHead(param);
    }

    /** How Adam-mini splits a parameter into blocks that share one second moment v. */
    public enum SecondMoments {
        /** the embedding and the LM head: one v per weight (plain Adam) */
        PER_WEIGHT,
        /** q_proj, k_proj: one v per attention head of {@link #attentionHeadNumel()} weights */
        PER_HEAD,
        /** every other tensor: one v for the whole tensor */
        PER_TENSOR
    }

    /** Adam-mini's partition (zyushun/Adam-mini as LLaMA-Factory builds it). */
    public static SecondMoments adamMiniBlocks(String param) {
        if (isEmbeddingOrHead(param)) {
            return SecondMoments.PER_WEIGHT;
        }
        String module = layerLinearModule(param);
        boolean queryOrKey = module != null && (leaf(module).equals("q_proj") || leaf(module).equals("k_proj"));
        return queryOrKey ? SecondMoments.PER_HEAD : SecondMoments.PER_TENSOR;
    }

    /** Adam-mini's own decay rule: every parameter whose name does not contain "norm" (biases decay). */
    public static boolean adamMiniDecays(String param) {
        return !param.contains("norm");
    }

    /**
     * The freeze rule's submodules of a decoder layer, from layer 0's names: self_attn, mlp,
     * input_layernorm, post_attention_layernorm.
     */
    public static Set<String> hiddenModules(Collection<String> params) {
        Set<String> modules = new LinkedHashSet<>();
        for (String name : params) {
            if (layerIndex(name) == 0) {
                modules.add(name.substring(layerPrefix(0).length()).split("\\.")[0]);
            }
        }
        return modules;
    }

    /** The freeze rule's modules outside the decoder layers: embed_tokens, norm, lm_head. */
    public static Set<String> nonHiddenModules(Collection<String> params) {
        Set<String> modules = new LinkedHashSet<>();
        for (String name : params) {
            if (layerIndex(name) < 0) {
                String[] parts = name.split("\\.");
                modules.add(parts[parts.length - 2]);
            }
        }
        return modules;
    }

    /**
     * LLaMA-Factory's freeze pattern for submodule {@code module} of layer {@code layer} ("all":
     * the whole layer); a parameter trains when its name contains the pattern: ".3.mlp".
     */
    public static String freezePattern(int layer, String module) {
        return "." + layer + "." + (module.equals("all") ? "" : module);
    }

    /** PEFT's modules_to_save rule: the parameter's module is one of {@code modules} or ends with ".module". */
    public static boolean isSavedModule(String param, List<String> modules) {
        int dot = param.lastIndexOf('.');
        String module = dot < 0 ? param : param.substring(0, dot);
        return modules.stream().anyMatch(m -> module.equals(m) || module.endsWith("." + m));
    }
}
