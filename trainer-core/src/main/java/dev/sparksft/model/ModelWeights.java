package dev.sparksft.model;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import dev.sparksft.runtime.DiskWrites;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * A model's parameters by their Hugging Face names, held in float32 (the master copy every
 * computation uses), together with the dtype each was stored in and the shard it came from, so
 * that saving writes back the same layout: load, save, load is bit-exact because F16 and BF16
 * widen to F32 exactly and narrow back to the same bits. Names are {@link ModelLayout}'s; the
 * files' names may carry another prefix (gemma3's "model.language_model."), mapped on reading and
 * writing.
 */
public final class ModelWeights {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, Tensor> tensors;
    /** Frozen linear weights held in 4 bits (quantization_bit: 4), which {@link #tensors} does not hold. */
    private final Map<String, QuantizedWeight> quantized;
    private final Map<String, Dtype> storedDtypes;
    /** Shard file per tensor; empty when the model is one {@value #SINGLE_FILE}. */
    private final Map<String, String> shardOf;
    /** Where the files keep the "model." names: {@link Architecture#checkpointPrefix()}. */
    private final String checkpointPrefix;

    public ModelWeights(Map<String, Tensor> tensors, Map<String, Dtype> storedDtypes, Map<String, String> shardOf) {
        this(tensors, Map.of(), storedDtypes, shardOf, "model.");
    }

    /** Weights some of which are held in 4 bits ({@code quantized}, by name). */
    public ModelWeights(Map<String, Tensor> tensors, Map<String, QuantizedWeight> quantized, Map<String, Dtype> storedDtypes,
                        Map<String, String> shardOf) {
        this(tensors, quantized, storedDtypes, shardOf, "model.");
    }

    private ModelWeights(Map<String, Tensor> tensors, Map<String, QuantizedWeight> quantized,
                         Map<String, Dtype> storedDtypes, Map<String, String> shardOf, String checkpointPrefix) {
        this.tensors = new LinkedHashMap<>(tensors);
        this.quantized = new LinkedHashMap<>(quantized);
        this.storedDtypes = new LinkedHashMap<>(storedDtypes);
        this.shardOf = new LinkedHashMap<>(shardOf);
        this.checkpointPrefix = checkpointPrefix;
    }

    /**
     * These weights with {@code tensors} (and their stored dtypes) in place of the full-precision ones:
     * the 4-bit weights, shard layout and checkpoint names stay (a resized embedding and head).
     */
    ModelWeights withTensors(Map<String, Tensor> tensors, Map<String, Dtype> storedDtypes) {
        return new ModelWeights(tensors, quantized, storedDtypes, shardOf, checkpointPrefix);
    }

    /** The name parameter {@code name} has in the files (and in a PEFT adapter of this model). */
    public String storedName(String name) {
        return ModelLayout.storedName(name, checkpointPrefix);
    }

    /** The parameter a stored name is, or null when it is outside the text model. */
    public String canonicalName(String stored) {
        return ModelLayout.canonicalName(stored, checkpointPrefix);
    }

    /**
     * These weights on {@code device} (the same object when they are there already): fp32 masters
     * on the GPU for CUDA training. Stored dtypes and the shard layout are kept for saving.
     */
    public ModelWeights to(org.bytedeco.pytorch.Device device) {
        boolean same = tensors.values().stream().allMatch(t -> t.device().type().value == device.type().value
                && t.device().index() == device.index()) && quantized.values().stream().allMatch(
                q -> q.device().type().value == device.type().value && q.device().index() == device.index());
        if (same) {
            // no aliases: a detached alias of every weight would pin its storage until the Java GC ran,
            // so memory that ZeRO-3 releases (or a switch of dtype frees) would stay resident
            return this;
        }
        Map<String, Tensor> moved = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            moved.put(e.getKey(), e.getValue().to(device, e.getValue().scalar_type()).detach());
        }
        Map<String, QuantizedWeight> movedQuantized = new LinkedHashMap<>();
        quantized.forEach((name, q) -> movedQuantized.put(name, q.to(device)));
        return new ModelWeights(moved, movedQuantized, storedDtypes, shardOf, checkpointPrefix);
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalStateException(quantized.containsKey(name) ? name + " is held in 4 bits: read it "
                    + "with quantized(name)" : "no parameter named " + name);
        }
        return t;
    }

    /** The weights held as tensors: every parameter but the {@link #quantized} ones. */
    public Map<String, Tensor> tensors() {
        return java.util.Collections.unmodifiableMap(tensors);
    }

    /** The 4-bit weight {@code name}, or null when it is an ordinary tensor (or absent). */
    public QuantizedWeight quantized(String name) {
        return quantized.get(name);
    }

    /** The weights held in 4 bits, by name (empty without quantization_bit). */
    public Map<String, QuantizedWeight> quantizedWeights() {
        return java.util.Collections.unmodifiableMap(quantized);
    }

    /** The shape of every weight, tensors and 4-bit ones, in HF order where the model gives it. */
    public Map<String, long[]> shapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        tensors.forEach((n, t) -> shapes.put(n, t.sizes().vec().get()));
        quantized.forEach((n, q) -> shapes.put(n, q.shape()));
        return shapes;
    }

    /** Where the weights live. */
    public org.bytedeco.pytorch.Device device() {
        return tensors.values().iterator().next().device();
    }

    /** Shard file per tensor; empty for a single file. */
    public Map<String, String> shardLayout() {
        return java.util.Collections.unmodifiableMap(shardOf);
    }

    public Dtype storedDtype(String name) {
        return storedDtypes.get(name);
    }

    /** The name and shape of every parameter a model of {@code cfg} has, in HF order ({@link ModelLayout}). */
    public static Map<String, long[]> expectedShapes(ModelConfig cfg) {
        return new ModelLayout(cfg).expectedShapes();
    }

    /**
     * Loads {@code dir/model.safetensors}, or the shards named by {@code dir/model.safetensors.index.json},
     * checking every tensor's name and shape against {@code cfg}.
     */
    public static ModelWeights load(Path dir, ModelConfig cfg) throws IOException {
        return load(dir, cfg, name -> Dtype.F32);
    }

    /**
     * {@link #load(Path, ModelConfig)} with each tensor held in {@code heldAs.apply(name)}: read in
     * its stored dtype, converted once, and the stored copy freed at once, so a bf16 weight that
     * stays bf16 never exists in float32 and loading never holds more than one extra tensor.
     */
    public static ModelWeights load(Path dir, ModelConfig cfg, java.util.function.Function<String, Dtype> heldAs)
            throws IOException {
        return load(dir, cfg, heldAs, name -> true, null);
    }

    /**
     * {@link #load(Path, ModelConfig, java.util.function.Function)} of the tensors {@code wanted} names
     * only (every tensor's header is still checked): the others are never read.
     */
    public static ModelWeights load(Path dir, ModelConfig cfg, java.util.function.Function<String, Dtype> heldAs,
                                    java.util.function.Predicate<String> wanted) throws IOException {
        return load(dir, cfg, heldAs, wanted, null);
    }

    /**
     * {@link #load(Path, ModelConfig, java.util.function.Function)} with the weights {@code quantization}
     * names quantized as they are read (null: none): each is read in its held dtype, quantized and
     * freed before the next, so loading never holds more than one full linear weight.
     */
    public static ModelWeights load(Path dir, ModelConfig cfg, java.util.function.Function<String, Dtype> heldAs,
                                    FourBitQuantization quantization) throws IOException {
        return load(dir, cfg, heldAs, name -> true, quantization);
    }

    /** The tensors {@code wanted} names, those {@code quantization} names (null: none) in 4 bits. */
    public static ModelWeights load(Path dir, ModelConfig cfg, java.util.function.Function<String, Dtype> heldAs,
                                    java.util.function.Predicate<String> wanted, FourBitQuantization quantization)
            throws IOException {
        Map<String, String> indexed = new LinkedHashMap<>();     // stored name -> shard, as the index says
        Map<String, String> shardOf = new LinkedHashMap<>();     // parameter name -> shard
        List<String> files = new ArrayList<>();
        Path index = dir.resolve(INDEX_FILE);
        if (Files.exists(index)) {
            JsonNode map = JsonFiles.read(index).get("weight_map");
            if (map == null || !map.isObject()) {
                throw new UserError(index + " has no 'weight_map' object");
            }
            map.fields().forEachRemaining(f -> indexed.put(f.getKey(), f.getValue().asText()));
            new TreeSet<>(indexed.values()).forEach(files::add);
        } else if (Files.exists(dir.resolve(SINGLE_FILE))) {
            files.add(SINGLE_FILE);
        } else {
            throw new UserError("model directory " + dir + " has neither " + SINGLE_FILE + " nor "
                    + INDEX_FILE);
        }

        Map<String, long[]> expected = expectedShapes(cfg);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, QuantizedWeight> quantized = new LinkedHashMap<>();
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        Map<String, Safetensors.Header> headers = new LinkedHashMap<>();
        for (String file : files) {
            Path path = dir.resolve(file).normalize();
            if (!path.startsWith(dir.normalize()) || !Files.isRegularFile(path)) {
                throw new UserError(index + " names shard '" + file + "', which is not a file in " + dir);
            }
            headers.put(file, Safetensors.readHeader(path));
        }
        String prefix = checkpointPrefix(cfg, headers.values());
        for (String file : files) {
            Path path = dir.resolve(file).normalize();
            Safetensors.Header header = headers.get(file);
            for (Safetensors.Entry e : header.entries().values()) {
                if (e.name().endsWith("rotary_emb.inv_freq")) {
                    continue; // a buffer older checkpoints saved; recomputed from the config
                }
                if (!indexed.isEmpty() && !file.equals(indexed.get(e.name()))) {
                    throw new UserError(path + ": tensor '" + e.name() + "' is not assigned to this shard in "
                            + INDEX_FILE);
                }
                String name = ModelLayout.canonicalName(e.name(), prefix);
                if (name == null) {
                    throw new UserError(path + ": unexpected tensor '" + e.name() + "': only the text model (under "
                            + prefix + ") of a " + cfg.modelType() + " checkpoint is supported; use a checkpoint "
                            + "without the vision tower");
                }
                if (!indexed.isEmpty()) {
                    shardOf.put(name, file);
                }
                long[] want = expected.get(name);
                boolean tiedHead = name.equals(ModelLayout.LM_HEAD) && cfg.tieWordEmbeddings();
                if (want == null && !tiedHead && MoeConfig.fusedExperts(e.name()) != null) {
                    throw new UserError(path + ": " + MoeConfig.fusedExperts(e.name()));
                }
                if (want == null && !tiedHead) {
                    throw new UserError(path + ": unexpected tensor '" + e.name() + "' for a "
                            + cfg.modelType() + " model with this config.json");
                }
                if (want != null && !Arrays.equals(want, e.shape())) {
                    throw new UserError(path + ": tensor '" + e.name() + "' has shape "
                            + Arrays.toString(e.shape()) + " but config.json implies " + Arrays.toString(want));
                }
                if (tensors.containsKey(name) || quantized.containsKey(name)) {
                    throw new UserError(path + ": tensor '" + e.name() + "' appears in two files");
                }
                if (!wanted.test(name)) {
                    continue;
                }
                if (quantization != null && quantization.quantizes(name)) {
                    try (PointerScope scope = new PointerScope()) {   // the full weight is freed at once
                        quantized.put(name, QuantizedWeight.quantize(read(header, e, heldAs.apply(name)),
                                quantization.type(), quantization.doubleQuant()));
                    }
                } else {
                    tensors.put(name, read(header, e, heldAs.apply(name)));
                }
                dtypes.put(name, e.dtype());
            }
        }
        List<String> missing = expected.keySet().stream().filter(wanted)
                .filter(n -> !tensors.containsKey(n) && !quantized.containsKey(n)).toList();
        if (!missing.isEmpty()) {
            throw new UserError("model directory " + dir + " is missing " + missing.size()
                    + " tensor(s), first: " + ModelLayout.storedName(missing.get(0), prefix));
        }
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        expected.keySet().stream().filter(tensors::containsKey).forEach(n -> ordered.put(n, tensors.get(n)));
        tensors.keySet().stream().filter(n -> !ordered.containsKey(n)).forEach(n -> ordered.put(n, tensors.get(n)));
        return new ModelWeights(ordered, quantized, dtypes, shardOf, prefix);
    }

    /**
     * Where the files keep the "model." names: the architecture's prefix, but for a Qwen2-VL directory the one its
     * names show: "model.language_model." (transformers 5's modules, with the vision tower under "model.visual.")
     * or "model." (the hub's, with "visual.").
     */
    private static String checkpointPrefix(ModelConfig cfg, java.util.Collection<Safetensors.Header> headers) {
        boolean languageModel = headers.stream().flatMap(h -> h.entries().keySet().stream())
                .anyMatch(n -> n.startsWith(ModelLayout.LANGUAGE_MODEL_PREFIX));
        return cfg.architecture().visionLanguage() && languageModel ? ModelLayout.LANGUAGE_MODEL_PREFIX
                : cfg.architecture().checkpointPrefix();
    }

    /** One tensor in {@code held}; the stored copy (when it differs) is released before the next is read. */
    private static Tensor read(Safetensors.Header header, Safetensors.Entry e, Dtype held) throws IOException {
        if (e.dtype() == held) {
            return Safetensors.readTensor(header, e);
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor converted = Safetensors.readTensor(header, e).to(held.scalarType);
            converted.retainReference();    // outlives the scope, which frees the stored copy now
            scope.detach(converted);
            return converted;
        }
    }

    /**
     * Writes the weights to {@code dir} in the layout and dtypes they were loaded with.
     *
     * @return the CRC32C of each safetensors file written, by file name
     */
    public Map<String, Long> save(Path dir, Dtype defaultDtype) throws IOException {
        return write(dir, defaultDtype, shardOf);
    }

    /**
     * Writes the weights in shards of at most {@code maxShardBytes} (a tensor larger than that is
     * a shard of its own), as Hugging Face's save_pretrained(max_shard_size) splits them: tensors
     * in order, a new shard whenever the next would overflow the current one. One shard is
     * {@value #SINGLE_FILE}; more are model-00001-of-0000N.safetensors with {@value #INDEX_FILE}.
     */
    public void saveSharded(Path dir, Dtype defaultDtype, long maxShardBytes) throws IOException {
        List<List<String>> shards = new ArrayList<>();
        long current = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            long bytes = e.getValue().numel() * storedDtypes.getOrDefault(e.getKey(), defaultDtype).numBytes;
            if (shards.isEmpty() || (current + bytes > maxShardBytes && current > 0)) {
                shards.add(new ArrayList<>());
                current = 0;
            }
            shards.get(shards.size() - 1).add(e.getKey());
            current += bytes;
        }
        Map<String, String> layout = new LinkedHashMap<>();
        if (shards.size() > 1) {
            for (int i = 0; i < shards.size(); i++) {
                String file = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                shards.get(i).forEach(name -> layout.put(name, file));
            }
        }
        write(dir, defaultDtype, layout);
    }

    /**
     * @param layout shard file per tensor; empty for one {@value #SINGLE_FILE}
     * @return the CRC32C of each safetensors file written, by file name
     */
    private Map<String, Long> write(Path dir, Dtype defaultDtype, Map<String, String> layout) throws IOException {
        if (!quantized.isEmpty()) {   // quantization trains adapters only, which save without the base
            throw new IllegalStateException("a model with 4-bit weights is never saved whole");
        }
        Files.createDirectories(dir);
        Map<String, Map<String, Tensor>> byFile = new TreeMap<>();
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        long totalBytes = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Dtype dtype = storedDtypes.getOrDefault(e.getKey(), defaultDtype);
            dtypes.put(e.getKey(), dtype);
            totalBytes += e.getValue().numel() * dtype.numBytes;
            String file = layout.isEmpty() ? SINGLE_FILE : layout.get(e.getKey());
            byFile.computeIfAbsent(file, f -> new TreeMap<>()).put(storedName(e.getKey()), e.getValue());
        }
        Map<String, Dtype> storedAs = new LinkedHashMap<>();
        dtypes.forEach((n, d) -> storedAs.put(storedName(n), d));
        Map<String, Long> checksums = new TreeMap<>();
        for (Map.Entry<String, Map<String, Tensor>> f : byFile.entrySet()) {   // converted tensor by tensor
            checksums.put(f.getKey(), Safetensors.write(dir.resolve(f.getKey()), f.getValue(), storedAs));
        }
        if (!layout.isEmpty()) {
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", totalBytes);
            ObjectNode map = index.putObject("weight_map");
            new TreeMap<String, String>(layout).forEach((n, file) -> map.put(storedName(n), file));
            DiskWrites.writeString(dir.resolve(INDEX_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index));
        }
        return checksums;
    }
}
