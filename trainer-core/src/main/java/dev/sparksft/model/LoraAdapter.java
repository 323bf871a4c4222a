package dev.sparksft.model;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import dev.sparksft.runtime.DiskWrites;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * A LoRA adapter in PEFT's layout: for each target linear weight W (out, in) a pair A (r, in),
 * B (out, r), so the layer computes
 * <pre>
 *   y = x W^T + b + scaling * dropout(x) A^T B^T,   scaling = alpha / r   (alpha / sqrt(r) with rsLoRA)
 * </pre>
 * A starts as kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and B as zeros,
 * as PEFT does, so training starts from the base model exactly. {@code modules_to_save}
 * (LLaMA-Factory's additional_target) are base weights trained in full and saved with the
 * adapter. Files: {@value #WEIGHTS_FILE} with keys {@code base_model.model.<module>.lora_A.weight}
 * and {@code base_model.model.<param>} for saved modules, and {@value #CONFIG_FILE}. A PiSSA
 * adapter ({@link Pissa}) starts from its weights' singular vectors over residual base weights.
 */
public final class LoraAdapter implements Adapter {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One adapted weight's pair: A (r, in), B (out, r). */
    public record Pair(Tensor a, Tensor b) {}

    private final int rank;
    private final double alpha;                      // a double: a converted rsLoRA adapter's is alpha x sqrt(2)
    private final double dropout;
    private final boolean rslora;
    private final List<String> targetModules;
    private final List<String> modulesToSave;
    private final Map<String, Pair> pairs;           // by the adapted weight's name: model.layers.0.self_attn.q_proj.weight
    private String init;                             // init_lora_weights: null for PEFT's default (true), "pissa..."
    private Map<String, Pair> initial;               // pissa_convert: the pairs as training started, else null
    private boolean training;
    private Generator dropoutGenerator;

    LoraAdapter(int rank, double alpha, double dropout, boolean rslora, List<String> targetModules,
                List<String> modulesToSave, Map<String, Pair> pairs) {
        this.rank = rank;
        this.alpha = alpha;
        this.dropout = dropout;
        this.rslora = rslora;
        this.targetModules = List.copyOf(targetModules);
        this.modulesToSave = List.copyOf(modulesToSave);
        this.pairs = new LinkedHashMap<>(pairs);
    }

    /**
     * What a new adapter is made of: the lora_* keys and additional_target.
     *
     * @param targets       linear module names (q_proj, ... or a full module name), or ["all"] for every
     *                      layer linear
     * @param modulesToSave base modules trained in full and saved with the adapter (PEFT modules_to_save)
     */
    public record Settings(int rank, int alpha, double dropout, boolean rslora, List<String> targets,
                           List<String> modulesToSave) {
        public Settings {
            targets = List.copyOf(targets);
            modulesToSave = List.copyOf(modulesToSave);
        }
    }

    /** A new adapter for {@code weights}' layer linears named by {@code s}, initialised from {@code seed} (the same on every rank). */
    public static LoraAdapter create(ModelWeights weights, Settings s, long seed) {
        boolean all = s.targets().size() == 1 && s.targets().get(0).equals("all");
        List<String> targets = all ? ModelLayout.LAYER_LINEARS : s.targets();
        Generator gen = torch.createCPUGenerator(seed);
        Map<String, Pair> pairs = new LinkedHashMap<>();
        TreeSet<String> linear = new TreeSet<>();
        for (Map.Entry<String, long[]> e : weights.shapes().entrySet()) {   // 4-bit weights included
            String module = ModelLayout.layerLinearModule(e.getKey());
            if (module == null) {
                continue;
            }
            linear.add(ModelLayout.leaf(module));
            if (targets.stream().noneMatch(t -> module.equals(t) || module.endsWith("." + t))) {
                continue;
            }
            long out = e.getValue()[0];
            long in = e.getValue()[1];
            double bound = 1 / Math.sqrt(in);   // kaiming_uniform_(a=sqrt(5)) on a (r, in) weight
            Tensor a = torch.rand(new long[] {s.rank(), in}, new GeneratorOptional(gen),
                    new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Float))
                    .mul_(new Scalar(2 * bound)).sub_(new Scalar(bound)).to(weights.device(), torch.ScalarType.Float);
            Tensor b = torch.zeros(new long[] {out, s.rank()}).to(weights.device(), torch.ScalarType.Float);
            pairs.put(e.getKey(), new Pair(a, b));
        }
        if (pairs.isEmpty()) {
            throw new UserError("lora_target: " + s.targets() + " matches no linear module; choose "
                    + "from " + String.join(", ", linear) + " or all");
        }
        for (String m : s.modulesToSave()) {
            if (weights.tensors().keySet().stream().noneMatch(n -> ModelLayout.isSavedModule(n, List.of(m)))) {
                throw new UserError("additional_target: module '" + m + "' is not in this model; for "
                        + "example embed_tokens, lm_head or norm");
            }
        }
        List<String> used = new ArrayList<>(all ? linear : new TreeSet<>(targets));   // all: the linears this model has (Phi-3: fused)
        return new LoraAdapter(s.rank(), s.alpha(), s.dropout(), s.rslora(), used, s.modulesToSave(), pairs);
    }

    public double scaling() {
        return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    double alpha() {
        return alpha;
    }

    boolean rslora() {
        return rslora;
    }

    /** The pairs by adapted weight name (live: the trained tensors). */
    Map<String, Pair> pairs() {
        return pairs;
    }

    /** An adapter with these settings over other pairs (a PiSSA conversion, the initial pairs). */
    LoraAdapter withPairs(int rank, double alpha, Map<String, Pair> pairs, String init) {
        LoraAdapter a = new LoraAdapter(rank, alpha, dropout, rslora, targetModules, modulesToSave, pairs);
        a.init = init;
        return a;
    }

    /** Records how the pairs were initialised (PEFT's init_lora_weights, written to adapter_config.json). */
    void initialisedAs(String initLoraWeights) {
        this.init = initLoraWeights;
    }

    /** init_lora_weights: null for PEFT's default, "pissa" or "pissa_niter_K" for a PiSSA adapter. */
    public String init() {
        return init;
    }

    /** pissa_convert: remembers the pairs as they are now, where training starts (copies). */
    public void keepInitial() {
        initial = new LinkedHashMap<>();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            pairs.forEach((n, p) -> initial.put(n, new Pair(p.a().clone(), p.b().clone())));
        }
    }

    /** The adapter as training started, with init_lora_weights true (LLaMA-Factory's pissa_init folder), or null. */
    public LoraAdapter initialAdapter() {
        return initial == null ? null : withPairs(rank, alpha, initial, null);
    }

    /** The trained adapter as a plain LoRA over the weights training started from (pissa_convert), or null. */
    public LoraAdapter convertedAdapter() {
        return initial == null ? null : Pissa.converted(this, initial);
    }

    /** This adapter with init_lora_weights true (LLaMA-Factory's pissa_backup): the same tensors. */
    public LoraAdapter withDefaultInit() {
        return withPairs(rank, alpha, pairs, null);
    }

    public int rank() {
        return rank;
    }

    public Pair pair(String weightName) {
        return pairs.get(weightName);
    }

    /** The base parameters trained in full and saved with the adapter (additional_target). */
    public List<String> savedModules(ModelWeights weights) {
        return weights.tensors().keySet().stream().filter(n -> ModelLayout.isSavedModule(n, modulesToSave)).toList();
    }

    /** The adapter's own tensors by PEFT name without the prefix: model.layers.0.self_attn.q_proj.lora_A.weight. */
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> t = new LinkedHashMap<>();
        pairs.forEach((w, p) -> {
            String module = ModelLayout.layerLinearModule(w);
            t.put(module + ".lora_A.weight", p.a());
            t.put(module + ".lora_B.weight", p.b());
        });
        return t;
    }

    /** The generator lora_dropout draws its masks from (one per rank). */
    public void seedDropout(Generator generator) {
        this.dropoutGenerator = generator;
    }

    /**
     * The generator lora_dropout draws its masks from, or null when there is no dropout:
     * activation checkpointing saves and restores its state so that a recomputed layer draws
     * the masks its first forward pass drew.
     */
    public Generator dropoutGenerator() {
        return dropout > 0 ? dropoutGenerator : null;
    }

    /** Dropout on the adapter's input applies in training forward passes only. */
    public void train(boolean on) {
        if (on && dropout > 0 && dropoutGenerator == null) {
            throw new IllegalStateException("lora_dropout needs a generator: call seedDropout first");
        }
        this.training = on;
    }

    /** y + scaling * dropout(x) A^T B^T for the linear weight {@code pair}; x (..., in), y (..., out). */
    Tensor addTo(Tensor y, Tensor x, Pair pair) {
        Tensor in = x;
        if (training && dropout > 0) {
            // the mask has no gradient; it is drawn on the CPU (the rank's generator is a CPU one) and moved
            Tensor keep = torch.bernoulli(torch.ones(x.sizes().vec().get()), 1 - dropout,
                    new GeneratorOptional(dropoutGenerator)).to(x.device(), x.scalar_type());
            in = x.mul(keep).div_(new Scalar(1 - dropout));
        }
        // (..., in) -> (..., r) -> (..., out); the adapter stays float32 over a pure_bf16 base
        Tensor delta = torch.linear(torch.linear(in.to(pair.a().scalar_type()), pair.a()), pair.b());
        return y.add(delta.to(y.scalar_type()), new Scalar(scaling()));
    }

    /** W += scaling * B A for every pair: the merged model computes what base + adapter computes. */
    public void mergeInto(ModelWeights weights) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            pairs.forEach((name, p) -> weights.get(name).add_(p.b().matmul(p.a()), new Scalar(scaling())));
        }
    }

    /**
     * Writes adapter_model.safetensors (float32) and adapter_config.json to {@code dir}.
     *
     * @return the CRC32C of adapter_model.safetensors, by file name
     */
    public Map<String, Long> save(Path dir, ModelWeights weights, String baseModel) throws IOException {
        Files.createDirectories(dir);
        long checksum = PeftFiles.writeWeights(dir, tensors(), savedModules(weights), weights);
        ObjectNode c = JSON.createObjectNode();
        c.putObject("alpha_pattern");
        c.put("base_model_name_or_path", baseModel).put("bias", "none").put("fan_in_fan_out", false)
                .put("inference_mode", true);
        if (init == null) {
            c.put("init_lora_weights", true);
        } else {
            c.put("init_lora_weights", init);
        }
        if (alpha == Math.rint(alpha)) {
            c.put("lora_alpha", (long) alpha);   // PEFT writes an int
        } else {
            c.put("lora_alpha", alpha);
        }
        c.put("lora_dropout", dropout);
        PeftFiles.putModulesToSave(c, modulesToSave);
        c.put("peft_type", "LORA").put("r", rank);
        c.putObject("rank_pattern");
        c.putNull("revision");
        ArrayNode t = c.putArray("target_modules");
        targetModules.forEach(t::add);
        c.put("task_type", "CAUSAL_LM").put("use_dora", false).put("use_rslora", rslora);
        DiskWrites.writeString(dir.resolve(CONFIG_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c));
        return Map.of(WEIGHTS_FILE, checksum);
    }

    /**
     * Reads a PEFT LoRA adapter for {@code weights}' model, checking every key and shape; saved
     * modules (modules_to_save) are copied into {@code weights}. A PiSSA adapter (init_lora_weights
     * "pissa..."), which fits the residual base only, turns {@code weights} into that residual as
     * PEFT's from_pretrained does, the randomized SVD's draw keyed by {@code seed} as in training.
     */
    public static LoraAdapter load(Path dir, ModelWeights weights, long seed) throws IOException {
        LoraAdapter adapter = read(dir, weights);
        if (Pissa.isPissa(adapter.init)) {
            Pissa.makeResidual(weights, adapter, adapter.init, seed);
        }
        return adapter;
    }

    /**
     * Resuming: the pairs (and saved modules) of the checkpoint adapter in {@code dir} replace this
     * adapter's values; the base weights are not touched (they already are what this adapter was
     * built over, a PiSSA residual included).
     */
    public void resumeFrom(Path dir, ModelWeights weights) throws IOException {
        LoraAdapter saved = read(dir, weights);
        if (saved.rank != rank || !saved.pairs.keySet().equals(pairs.keySet())) {
            throw new UserError("resume_from_checkpoint: the adapter in " + dir + " (r = " + saved.rank + ", "
                    + saved.pairs.size() + " weights) is not the one this run builds (r = " + rank + ", " + pairs.size()
                    + " weights); resume with the lora_rank and lora_target it was trained with");
        }
        try (NoGradGuard noGrad = new NoGradGuard()) {
            saved.pairs.forEach((n, p) -> {
                pairs.get(n).a().copy_(p.a());
                pairs.get(n).b().copy_(p.b());
            });
        }
    }

    private static LoraAdapter read(Path dir, ModelWeights weights) throws IOException {
        Path configFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new UserError("adapter directory " + dir + " has no " + CONFIG_FILE);
        }
        JsonNode c = JsonFiles.read(configFile);
        if (!c.path("peft_type").asText("").equals("LORA")) {
            throw new UserError(configFile + ": peft_type is '" + c.path("peft_type").asText()
                    + "'; only LORA adapters are supported");
        }
        if (c.path("use_dora").asBoolean(false)) {
            throw new UserError(configFile + ": DoRA adapters (use_dora: true) are not supported");
        }
        int rank = c.path("r").asInt(8);
        double alpha = c.path("lora_alpha").asDouble(8);
        JsonNode initNode = c.path("init_lora_weights");
        String init = initNode.isTextual() ? initNode.asText() : null;
        if (init != null && !Pissa.isPissa(init) && List.of("olora", "loftq", "corda").contains(init.toLowerCase(java.util.Locale.ROOT))) {
            throw new UserError(configFile + ": init_lora_weights '" + init + "' changed the base weights in a way "
                    + "spark-sft does not reproduce (PiSSA's it does); convert the adapter to a plain LoRA first");
        }
        List<String> targets = new ArrayList<>();
        c.path("target_modules").forEach(t -> targets.add(t.asText()));
        List<String> toSave = new ArrayList<>();
        c.path("modules_to_save").forEach(t -> toSave.add(t.asText()));
        Path file = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(file)) {
            throw new UserError("adapter directory " + dir + " has no " + WEIGHTS_FILE);
        }
        Safetensors.Header header = Safetensors.readHeader(file);
        Map<String, Tensor[]> found = new LinkedHashMap<>();
        for (Safetensors.Entry e : header.entries().values()) {
            if (!e.name().startsWith(PREFIX)) {
                throw new UserError(file + ": key '" + e.name() + "' does not start with " + PREFIX);
            }
            String stored = e.name().substring(PREFIX.length());
            String key = weights.canonicalName(stored) == null ? stored : weights.canonicalName(stored);
            Tensor t = Safetensors.readTensor(header, e).to(torch.ScalarType.Float);
            boolean isA = key.endsWith(".lora_A.weight");
            if (isA || key.endsWith(".lora_B.weight")) {
                String weight = key.substring(0, key.length() - ".lora_A.weight".length()) + ".weight";
                long[] w = weights.shapes().get(weight);   // 4-bit weights included
                if (w == null || ModelLayout.layerLinearModule(weight) == null) {
                    throw new UserError(file + ": '" + e.name() + "' adapts " + weight
                            + ", which is not a linear weight of this model");
                }
                long[] want = isA ? new long[] {rank, w[1]} : new long[] {w[0], rank};
                if (!Arrays.equals(want, e.shape())) {
                    throw new UserError(file + ": '" + e.name() + "' has shape " + Arrays.toString(e.shape())
                            + " but r = " + rank + " and the weight's shape imply " + Arrays.toString(want));
                }
                found.computeIfAbsent(weight, k -> new Tensor[2])[isA ? 0 : 1] = t.to(weights.device(),
                        torch.ScalarType.Float);
            } else if (weights.tensors().containsKey(key)) {
                Tensor base = weights.get(key);
                if (!Arrays.equals(base.sizes().vec().get(), e.shape())) {
                    throw new UserError(file + ": saved module '" + e.name() + "' has shape "
                            + Arrays.toString(e.shape()) + " but the model's " + key + " is "
                            + Arrays.toString(base.sizes().vec().get()));
                }
                try (NoGradGuard noGrad = new NoGradGuard()) {
                    base.copy_(t);
                }
            } else {
                throw new UserError(file + ": unexpected key '" + e.name() + "' for this model");
            }
        }
        Map<String, Pair> pairs = new LinkedHashMap<>();
        found.forEach((w, ab) -> {
            if (ab[0] == null || ab[1] == null) {
                throw new UserError(file + ": " + w + " has only one of lora_A and lora_B");
            }
            pairs.put(w, new Pair(ab[0], ab[1]));
        });
        if (pairs.isEmpty()) {
            throw new UserError(file + " holds no lora_A/lora_B weights");
        }
        LoraAdapter adapter = new LoraAdapter(rank, alpha, c.path("lora_dropout").asDouble(0),
                c.path("use_rslora").asBoolean(false), targets, toSave, pairs);
        adapter.init = init;
        return adapter;
    }
}
