package dev.sparksft.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import dev.sparksft.runtime.DiskWrites;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An OFT adapter (orthogonal fine-tuning) in the layout of PEFT 0.18, the version LLaMA-Factory
 * requires. For each target linear weight W (out, in) the input features are cut into k blocks of
 * b features (k b = in) and each block is rotated by its own orthogonal matrix before the frozen
 * layer runs:
 * <pre>
 *   y = (x R) W^T + bias,   R = blockdiag(R_1 .. R_k),   x_i (..., b) -> x_i R_i
 * </pre>
 * The parameter {@code oft_R.weight} (k, b(b-1)/2) holds, row i, the entries of a skew-symmetric
 * Q_i (b, b) above the diagonal in {@code torch.triu_indices(b, b, 1)} order (Q_i = U - U^T). R_i is
 * the Cayley transform (I + Q)(I - Q)^-1 through PEFT's truncated Neumann series (the default,
 * {@code num_cayley_neumann_terms} = 5): R = I + 2Q + 2Q^2 + 2Q^3 + Q^4; with
 * {@code use_cayley_neumann: false} PEFT solves exactly R = (I - Q)(I + Q)^-1, the transpose (and
 * inverse) of the series' limit, which is exactly orthogonal. The parameter starts at zero, so
 * R = I and training starts from the base model exactly. Merging gives W' = W R^T.
 *
 * <p>k and b follow PEFT per layer: from {@code oft_block_size} (k = in / b) or from
 * {@code oft_rank} (b = in / k); a value that does not divide a layer's in_features is moved to the
 * nearest divisor, with a warning, as PEFT does. {@code module_dropout} is written to the
 * config and has no effect: PEFT 0.18 builds its block dropout but never calls it in the forward.
 * Files: {@value Adapter#WEIGHTS_FILE} with keys {@code base_model.model.<module>.oft_R.weight}
 * (and {@code base_model.model.<param>} for additional_target), and {@value Adapter#CONFIG_FILE}.
 */
public final class OftAdapter implements Adapter {
    private static final Logger LOG = LoggerFactory.getLogger(OftAdapter.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** PEFT's version whose OFT this is: 0.18 changed the Neumann series, and PEFT warns on older files. */
    static final String PEFT_VERSION = "0.18.1";
    /** OFTConfig's defaults, which LLaMA-Factory keeps: the Cayley-Neumann series with 5 terms. */
    private static final boolean CAYLEY_NEUMANN = true;
    private static final int NUM_NEUMANN_TERMS = 5;

    private final int rank;              // oft_rank as configured (0: derived from the block size)
    private final int blockSize;         // oft_block_size as configured (0: derived from the rank)
    private final double moduleDropout;
    private final boolean cayleyNeumann;
    private final int numNeumannTerms;
    private final List<String> targetModules;
    private final List<String> modulesToSave;
    private final Map<String, Tensor> rotations;          // by the adapted weight's name: (k, b(b-1)/2) float32
    // by b and device: (b * b) int64, made here with the parameters, outside any step's PointerScope
    // (a tensor first made inside one would be freed when that step ends)
    private final Map<String, Tensor> skewIndex = new HashMap<>();

    OftAdapter(int rank, int blockSize, double moduleDropout, boolean cayleyNeumann, int numNeumannTerms,
               List<String> targetModules, List<String> modulesToSave, Map<String, Tensor> rotations) {
        this.rank = rank;
        this.blockSize = blockSize;
        this.moduleDropout = moduleDropout;
        this.cayleyNeumann = cayleyNeumann;
        this.numNeumannTerms = numNeumannTerms;
        this.targetModules = List.copyOf(targetModules);
        this.modulesToSave = List.copyOf(modulesToSave);
        this.rotations = new LinkedHashMap<>(rotations);
        rotations.values().forEach(w -> skewIndex.computeIfAbsent(indexKey(blockSizeOf(w), w), k -> skewIndex(blockSizeOf(w), w)));
    }

    /**
     * What a new adapter is made of: LLaMA-Factory's oft_* keys and additional_target. Exactly one
     * of {@code rank} and {@code blockSize} is non-zero (FinetuningArguments checks it).
     *
     * @param targets linear module names (q_proj, ... or a full module name), or ["all"] for every layer linear
     */
    public record Settings(int rank, int blockSize, double moduleDropout, List<String> targets,
                           List<String> modulesToSave) {
        public Settings {
            if ((rank == 0) == (blockSize == 0)) {
                throw new IllegalStateException("OFT needs exactly one of rank and block size, got " + rank
                        + " and " + blockSize);
            }
            targets = List.copyOf(targets);
            modulesToSave = List.copyOf(modulesToSave);
        }
    }

    /** A layer's blocks: k blocks of b features. */
    public record Blocks(int numBlocks, int blockSize) {
        /** The parameter's numel: k b (b - 1) / 2. */
        public long numParameters() {
            return (long) numBlocks * blockSize * (blockSize - 1) / 2;
        }
    }

    /**
     * The blocks PEFT's OFTLayer.update_layer gives a layer of {@code inFeatures}: from the block
     * size (rank 0) or from the rank, each moved to the nearest divisor of inFeatures when it does
     * not divide it (ties to the lower one), at most inFeatures.
     */
    public static Blocks blocks(long inFeatures, int rank, int blockSize) {
        int in = Math.toIntExact(inFeatures);
        if (rank == 0) {
            int b = in % blockSize != 0 || blockSize > in ? nearestDivisor(in, blockSize) : blockSize;
            return new Blocks(in / b, b);
        }
        int k = in % rank != 0 || rank > in ? nearestDivisor(in, rank) : rank;
        return new Blocks(k, in / k);
    }

    /** PEFT's adjust_oft_parameters. */
    static int nearestDivisor(int in, int p) {
        if (p >= in) {
            return in;
        }
        int higher = p;
        while (higher <= in && in % higher != 0) {
            higher++;
        }
        int lower = p;
        while (lower > 1 && in % lower != 0) {
            lower--;
        }
        return p - lower <= higher - p ? lower : higher;
    }

    /** A new adapter (all zeros: R = I) for {@code weights}' layer linears named by {@code s}. */
    public static OftAdapter create(ModelWeights weights, Settings s) {
        boolean all = s.targets().size() == 1 && s.targets().get(0).equals("all");
        List<String> targets = all ? ModelLayout.LAYER_LINEARS : s.targets();
        Map<String, Tensor> rotations = new LinkedHashMap<>();
        TreeSet<String> linear = new TreeSet<>();
        TreeMap<Long, TreeSet<String>> adjusted = new TreeMap<>();   // in_features -> the modules it was adjusted for
        for (Map.Entry<String, long[]> e : weights.shapes().entrySet()) {   // 4-bit weights included
            String module = ModelLayout.layerLinearModule(e.getKey());
            if (module == null) {
                continue;
            }
            linear.add(ModelLayout.leaf(module));
            if (targets.stream().noneMatch(t -> module.equals(t) || module.endsWith("." + t))) {
                continue;
            }
            long in = e.getValue()[1];
            Blocks b = blocks(in, s.rank(), s.blockSize());
            if (s.rank() == 0 && b.blockSize() != s.blockSize() || s.rank() != 0 && b.numBlocks() != s.rank()) {
                adjusted.computeIfAbsent(in, k -> new TreeSet<>()).add(ModelLayout.leaf(module));
            }
            rotations.put(e.getKey(), torch.zeros(new long[] {b.numBlocks(), b.numParameters() / b.numBlocks()})
                    .to(weights.device(), torch.ScalarType.Float));
        }
        if (rotations.isEmpty()) {
            throw new UserError("oft_target: " + s.targets() + " matches no linear module; choose from "
                    + String.join(", ", linear) + " or all");
        }
        if (!adjusted.isEmpty()) {   // PEFT warns and adjusts: the same run, with the reason in the log
            String key = s.rank() == 0 ? "oft_block_size" : "oft_rank";
            List<String> parts = new ArrayList<>();
            adjusted.forEach((in, modules) -> {
                Blocks b = blocks(in, s.rank(), s.blockSize());
                parts.add("in_features " + in + " (" + String.join(", ", modules) + ") gets "
                        + (s.rank() == 0 ? b.blockSize() : b.numBlocks()));
            });
            LOG.warn("OFT: {}: {} does not divide every layer's in_features; as PEFT does, {}; set a divisor of them "
                    + "to choose yourself", key, s.rank() == 0 ? s.blockSize() : s.rank(), String.join("; ", parts));
        }
        for (String m : s.modulesToSave()) {
            if (weights.tensors().keySet().stream().noneMatch(n -> ModelLayout.isSavedModule(n, List.of(m)))) {
                throw new UserError("additional_target: module '" + m + "' is not in this model; for "
                        + "example embed_tokens, lm_head or norm");
            }
        }
        List<String> used = new ArrayList<>(all ? linear : new TreeSet<>(targets));   // all: the linears this model has (Phi-3: fused)
        return new OftAdapter(s.rank(), s.blockSize(), s.moduleDropout(), CAYLEY_NEUMANN, NUM_NEUMANN_TERMS, used,
                s.modulesToSave(), rotations);
    }

    /** The parameter of the adapted weight {@code weightName}, (k, b(b-1)/2), or null when not adapted. */
    public Tensor rotation(String weightName) {
        return rotations.get(weightName);
    }

    @Override
    public List<String> savedModules(ModelWeights weights) {
        return weights.tensors().keySet().stream().filter(n -> ModelLayout.isSavedModule(n, modulesToSave)).toList();
    }

    /** model.layers.0.self_attn.q_proj.oft_R.weight for each adapted weight. */
    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> t = new LinkedHashMap<>();
        rotations.forEach((w, r) -> t.put(ModelLayout.layerLinearModule(w) + ".oft_R.weight", r));
        return t;
    }

    /** OFT draws nothing at random (module_dropout has no effect, as in PEFT). */
    @Override
    public void seedDropout(Generator generator) {}

    @Override
    public Generator dropoutGenerator() {
        return null;
    }

    @Override
    public void train(boolean on) {}

    /** The block size of a parameter (k, b(b-1)/2). */
    static int blockSizeOf(Tensor weight) {
        long n = weight.size(1);
        int b = (int) Math.round((1 + Math.sqrt(1 + 8.0 * n)) / 2);
        if ((long) b * (b - 1) / 2 != n) {
            throw new IllegalStateException("an OFT parameter's second dimension must be b(b-1)/2, got " + n);
        }
        return b;
    }

    /**
     * (b * b) indices into [0, v, -v] (1 + 2n per block) that lay out Q = U - U^T row-major: 0 on
     * the diagonal, 1 + p above it and 1 + n + p below it for the p-th upper-triangle entry.
     */
    private static Tensor skewIndex(int b, Tensor like) {
        int n = b * (b - 1) / 2;
        long[] idx = new long[b * b];
        int p = 0;
        for (int i = 0; i < b; i++) {
            for (int j = i + 1; j < b; j++, p++) {
                idx[i * b + j] = 1 + p;
                idx[j * b + i] = 1 + n + p;
            }
        }
        return Tensor.create(idx, b * b).to(like.device(), torch.ScalarType.Long);
    }

    private static String indexKey(int b, Tensor like) {
        return b + "@" + like.device().type().value + ":" + like.device().index();
    }

    /** R = blockdiag(R_1 .. R_k) as (k, b, b) for a parameter (k, b(b-1)/2), in its dtype. */
    public Tensor orthogonal(Tensor weight) {
        int b = blockSizeOf(weight);
        long k = weight.size(0);
        Tensor padded = torch.cat(new TensorVector(torch.zeros(new long[] {k, 1}).to(weight.device(), weight.scalar_type()),
                weight, weight.neg()), 1);                                        // (k, 1 + 2n)
        Tensor index = skewIndex.get(indexKey(b, weight));   // null only for a weight not of this adapter (tests)
        Tensor q = padded.index_select(1, index != null ? index : skewIndex(b, weight)).view(k, b, b); // (k, b, b), Q^T = -Q
        Tensor eye = torch.eye(b).to(weight.device(), weight.scalar_type()).expand(k, b, b);
        // exact: I + Q and I - Q commute, so (I + Q)^-1 (I - Q), a left solve, is PEFT's (I - Q)(I + Q)^-1
        return cayleyNeumann ? neumann(q, eye, numNeumannTerms) : torch.linalg_solve(eye.add(q), eye.sub(q), true);
    }

    /**
     * PEFT's _cayley_batch series, term by term as it adds them: I, + 2Q, + 2Q^2, then + 2Q^j for
     * j = 3 .. terms - 2, and finally + Q^(last power reached + 1) once terms > 2 (so 5 terms:
     * I + 2Q + 2Q^2 + 2Q^3 + Q^4; 3 or 4 terms: I + 2Q + 2Q^2 + Q^3). {@code eye} (k, b, b).
     */
    static Tensor neumann(Tensor q, Tensor eye, int terms) {
        Tensor r = eye.clone();
        if (terms > 1) {
            r = r.add(q, new Scalar(2.0));
            if (terms > 2) {
                Tensor square = torch.bmm(q, q);
                r = r.add(square, new Scalar(2.0));
                Tensor power = square;
                for (int j = 3; j < terms - 1; j++) {
                    power = torch.bmm(power, q);
                    r = r.add(power, new Scalar(2.0));
                }
                r = r.add(torch.bmm(power, q));
            }
        }
        return r;
    }

    /**
     * x rotated block by block before the adapted layer: x (..., in) in the parameter's dtype,
     * x_i (..., b) -> x_i R_i, back in x's dtype, as PEFT's OFTRotationModule.forward.
     */
    Tensor rotate(Tensor x, Tensor weight) {
        Tensor r = orthogonal(weight);                                           // (k, b, b)
        long k = r.size(0);
        long b = r.size(1);
        long[] shape = x.sizes().vec().get();
        Tensor blocks = x.to(weight.scalar_type()).reshape(-1, k, b).transpose(0, 1);   // (k, N, b)
        Tensor rotated = torch.bmm(blocks, r).transpose(0, 1).reshape(shape);          // (..., in)
        return rotated.to(x.scalar_type());
    }

    /** W = W R^T for every adapted weight, computed in float32 and stored back in W's dtype (PEFT's merge). */
    @Override
    public void mergeInto(ModelWeights weights) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            rotations.forEach((name, p) -> {
                Tensor w = weights.get(name);
                w.copy_(merged(w.to(p.scalar_type()), orthogonal(p)).to(w.scalar_type()));
            });
        }
    }

    /** W R^T for W (out, k b) and R (k, b, b): each block of W's columns times R_i^T. */
    static Tensor merged(Tensor w, Tensor r) {
        long out = w.size(0);
        Tensor blocks = w.reshape(out, r.size(0), r.size(1)).transpose(0, 1);           // (k, out, b)
        return torch.bmm(blocks, r.transpose(1, 2)).transpose(0, 1).reshape(out, w.size(1));
    }

    @Override
    public Map<String, Long> save(Path dir, ModelWeights weights, String baseModel) throws IOException {
        Files.createDirectories(dir);
        long checksum = PeftFiles.writeWeights(dir, tensors(), savedModules(weights), weights);
        // OFTConfig's fields as PEFT 0.18's save_pretrained writes them (sorted keys)
        ObjectNode c = JSON.createObjectNode();
        c.putNull("auto_mapping");
        c.put("base_model_name_or_path", baseModel).put("bias", "none").put("block_share", false).put("coft", false)
                .put("eps", 6e-5);
        c.putNull("exclude_modules");
        c.put("fan_in_fan_out", false).put("inference_mode", true).put("init_weights", true);
        c.putNull("layers_pattern");
        c.putNull("layers_to_transform");
        c.put("module_dropout", moduleDropout);
        PeftFiles.putModulesToSave(c, modulesToSave);
        c.put("num_cayley_neumann_terms", numNeumannTerms).put("oft_block_size", blockSize).put("peft_type", "OFT")
                .put("peft_version", PEFT_VERSION).put("r", rank);
        c.putNull("revision");
        ArrayNode t = c.putArray("target_modules");
        targetModules.forEach(t::add);
        c.put("task_type", "CAUSAL_LM").put("use_cayley_neumann", cayleyNeumann);
        DiskWrites.writeString(dir.resolve(CONFIG_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c));
        return Map.of(WEIGHTS_FILE, checksum);
    }

    /**
     * Reads a PEFT OFT adapter for {@code weights}' model, checking every key and shape against the
     * blocks its r and oft_block_size give each layer; saved modules (modules_to_save) are copied
     * into {@code weights}.
     */
    public static OftAdapter load(Path dir, ModelWeights weights) throws IOException {
        Path configFile = dir.resolve(CONFIG_FILE);
        JsonNode c = JsonFiles.read(configFile);
        if (!c.path("peft_type").asText("").equals("OFT")) {
            throw new UserError(configFile + ": peft_type is '" + c.path("peft_type").asText() + "', not OFT");
        }
        if (!c.has("oft_block_size")) {   // PEFT's own check_kwargs refuses these too
            throw new UserError(configFile + " has no oft_block_size: it was written by PEFT < 0.14, whose OFT "
                    + "weights are incompatible; retrain the adapter");
        }
        for (String flag : List.of("coft", "block_share")) {
            if (c.path(flag).asBoolean(false)) {
                throw new UserError(configFile + ": " + flag + ": true is not supported (LLaMA-Factory trains "
                        + "with " + flag + ": false); retrain the adapter without it");
            }
        }
        if (!c.path("bias").asText("none").equals("none")) {
            throw new UserError(configFile + ": bias: " + c.path("bias").asText() + " is not supported; only "
                    + "bias: none (LLaMA-Factory's) is");
        }
        int rank = c.path("r").asInt(0);
        int blockSize = c.path("oft_block_size").asInt(0);
        if ((rank == 0) == (blockSize == 0)) {
            throw new UserError(configFile + ": exactly one of r (" + rank + ") and oft_block_size (" + blockSize
                    + ") must be non-zero, as PEFT requires");
        }
        boolean neumann = c.path("use_cayley_neumann").asBoolean(true);
        int terms = c.path("num_cayley_neumann_terms").asInt(5);
        List<String> targets = new ArrayList<>();
        c.path("target_modules").forEach(t -> targets.add(t.asText()));
        List<String> toSave = new ArrayList<>();
        c.path("modules_to_save").forEach(t -> toSave.add(t.asText()));
        Path file = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(file)) {
            throw new UserError("adapter directory " + dir + " has no " + WEIGHTS_FILE);
        }
        Safetensors.Header header = Safetensors.readHeader(file);
        Map<String, Tensor> rotations = new LinkedHashMap<>();
        String suffix = ".oft_R.weight";
        for (Safetensors.Entry e : header.entries().values()) {
            if (!e.name().startsWith(PREFIX)) {
                throw new UserError(file + ": key '" + e.name() + "' does not start with " + PREFIX);
            }
            String stored = e.name().substring(PREFIX.length());
            String key = weights.canonicalName(stored) == null ? stored : weights.canonicalName(stored);
            Tensor t = Safetensors.readTensor(header, e).to(torch.ScalarType.Float);
            if (key.endsWith(suffix)) {
                String weight = key.substring(0, key.length() - suffix.length()) + ".weight";
                long[] w = weights.shapes().get(weight);   // 4-bit weights included
                if (w == null || ModelLayout.layerLinearModule(weight) == null) {
                    throw new UserError(file + ": '" + e.name() + "' adapts " + weight
                            + ", which is not a linear weight of this model");
                }
                Blocks b = blocks(w[1], rank, blockSize);
                long[] want = {b.numBlocks(), (long) b.blockSize() * (b.blockSize() - 1) / 2};
                if (!Arrays.equals(want, e.shape())) {
                    throw new UserError(file + ": '" + e.name() + "' has shape " + Arrays.toString(e.shape())
                            + " but r = " + rank + ", oft_block_size = " + blockSize + " and in_features "
                            + w[1] + " give " + Arrays.toString(want));
                }
                rotations.put(weight, t.to(weights.device(), torch.ScalarType.Float));
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
        if (rotations.isEmpty()) {
            throw new UserError(file + " holds no oft_R weights");
        }
        return new OftAdapter(rank, blockSize, c.path("module_dropout").asDouble(0), neumann, terms, targets, toSave,
                rotations);
    }
}
