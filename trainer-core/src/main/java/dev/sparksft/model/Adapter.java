package dev.sparksft.model;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.Tensor;

/**
 * A PEFT adapter over the frozen linear weights of a decoder: LoRA adds a low-rank term to a
 * layer's output, OFT rotates its input. What the trainer, checkpoints and export need of either:
 * its tensors, the base modules it trains in full, its dropout, merging and PEFT's files.
 */
public sealed interface Adapter permits LoraAdapter, OftAdapter {
    String WEIGHTS_FILE = "adapter_model.safetensors";
    String CONFIG_FILE = "adapter_config.json";
    /** PEFT's prefix of every key in adapter_model.safetensors. */
    String PREFIX = "base_model.model.";

    /** The adapter's own tensors by PEFT name without the {@code base_model.model.} prefix. */
    Map<String, Tensor> tensors();

    /** The base parameters trained in full and saved with the adapter (additional_target). */
    List<String> savedModules(ModelWeights weights);

    /** The generator the adapter's dropout draws from (one per rank). */
    void seedDropout(Generator generator);

    /** The generator dropout draws from, or null when the adapter draws nothing. */
    Generator dropoutGenerator();

    /** Dropout applies in training forward passes only. */
    void train(boolean on);

    /** Folds the adapter into {@code weights}: the merged model computes what base + adapter computes. */
    void mergeInto(ModelWeights weights);

    /**
     * Writes adapter_model.safetensors (float32) and adapter_config.json to {@code dir}.
     *
     * @return the CRC32C of adapter_model.safetensors, by file name
     */
    Map<String, Long> save(Path dir, ModelWeights weights, String baseModel) throws IOException;

    /** True when {@code dir} holds a PEFT adapter rather than a full model. */
    static boolean isAdapterDir(Path dir) {
        return Files.isRegularFile(dir.resolve(CONFIG_FILE));
    }

    /**
     * The LoRA or OFT adapter saved in {@code dir}, as its adapter_config.json's peft_type says;
     * {@code seed} keys a PiSSA adapter's randomized SVD, as in the run that trained it.
     */
    static Adapter load(Path dir, ModelWeights weights, long seed) throws IOException {
        Path configFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new UserError("adapter directory " + dir + " has no " + CONFIG_FILE);
        }
        String type = JsonFiles.read(configFile).path("peft_type").asText("");
        return switch (type) {
            case "LORA" -> LoraAdapter.load(dir, weights, seed);
            case "OFT" -> OftAdapter.load(dir, weights);
            default -> throw new UserError(configFile + ": peft_type is '" + type
                    + "'; only LORA and OFT adapters are supported");
        };
    }
}
