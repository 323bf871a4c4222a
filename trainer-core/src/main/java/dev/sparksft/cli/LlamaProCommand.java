package dev.sparksft.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.DiskWrites;
import dev.sparksft.train.Outputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * {@code sft llama-pro --model DIR --out DIR --num-expand N}: LLaMA Pro's block expansion, as
 * LLaMA-Factory's scripts/llama_pro.py writes it. The L decoder layers are split into N groups of
 * L / N; after each group a copy of its last layer is inserted with o_proj and down_proj zeroed,
 * so the new layer adds nothing to the residual stream and the expanded model computes what the
 * original did. Layers are renumbered 0 .. L + N - 1, config.json gets num_hidden_layers L + N,
 * the tokenizer and generation files are copied; a tied lm_head is not written. Then fine-tune with
 * finetuning_type: freeze, freeze_trainable_layers: N, use_llama_pro: true, which trains exactly
 * the inserted layers. The weights are held in float32 while they are rewritten (4 bytes per
 * parameter) and written in the dtypes they were stored in.
 */
final class LlamaProCommand {
    private static final ObjectMapper JSON = new ObjectMapper();

    private LlamaProCommand() {}

    static Path run(Path modelDir, Path out, int numExpand, long maxShardBytes) throws IOException {
        ModelConfig cfg = ModelConfig.load(modelDir);
        if (cfg.architecture().isGemma()) {   // layer_types (and gemma3's text_config and names) would need expanding too
            throw new UserError("llama-pro: model_type " + cfg.modelType() + " is not supported (its per-layer "
                    + "layer_types are not expanded); use a llama, mistral, qwen2 or qwen3 model");
        }
        if (cfg.moe() != null) {   // mlp_only_layers and the experts' down projections would need expanding too
            throw new UserError("llama-pro: model_type " + cfg.modelType() + " (a mixture of experts) is not supported; "
                    + "use a llama, mistral, qwen2 or qwen3 model");
        }
        int numLayers = cfg.numLayers();
        if (numExpand < 1 || numLayers % numExpand != 0) {
            throw new UserError("llama-pro: --num-expand " + numExpand + " must divide the model's num_hidden_layers "
                    + numLayers + " (one new layer after every num_layers / n layers); choose a divisor of " + numLayers);
        }
        if (Files.isDirectory(out)) {
            try (var entries = Files.list(out)) {
                if (entries.findAny().isPresent()) {
                    throw new UserError("llama-pro: --out " + out + " is not empty; choose a new directory");
                }
            }
        }
        ModelWeights weights = ModelWeights.load(modelDir, cfg);
        int split = numLayers / numExpand;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        int next = 0;
        for (int i = 0; i < numLayers; i++) {
            copyLayer(weights, i, next++, false, tensors, dtypes);
            if ((i + 1) % split == 0) {
                copyLayer(weights, i, next++, true, tensors, dtypes);
            }
        }
        weights.tensors().forEach((name, t) -> {
            boolean tiedHead = name.equals(ModelLayout.LM_HEAD) && cfg.tieWordEmbeddings();
            if (ModelLayout.layerIndex(name) < 0 && !tiedHead) {
                tensors.put(name, t);
                dtypes.put(name, weights.storedDtype(name));
            }
        });
        Files.createDirectories(out);
        ObjectNode config = cfg.raw().deepCopy();
        config.put("num_hidden_layers", numLayers + numExpand);
        DiskWrites.writeString(out.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        new ModelWeights(tensors, dtypes, Map.of()).saveSharded(out, cfg.torchDtype(), maxShardBytes);
        for (Path f : Outputs.sideFiles(modelDir)) {
            DiskWrites.copy(f, out.resolve(f.getFileName()));
        }
        return out;
    }

    /** Layer {@code from}'s tensors as layer {@code to}; an expanded copy has o_proj and down_proj zeroed. */
    private static void copyLayer(ModelWeights weights, int from, int to, boolean expanded, Map<String, Tensor> tensors,
                                  Map<String, Dtype> dtypes) {
        String prefix = ModelLayout.layerPrefix(from);
        weights.tensors().forEach((name, t) -> {
            if (ModelLayout.layerIndex(name) != from) {
                return;
            }
            String renamed = ModelLayout.layerPrefix(to) + name.substring(prefix.length());
            boolean zeroed = expanded && (name.contains("down_proj") || name.contains("o_proj"));
            tensors.put(renamed, zeroed ? torch.zeros_like(t) : expanded ? t.clone() : t);
            dtypes.put(renamed, weights.storedDtype(name));
        });
    }
}
