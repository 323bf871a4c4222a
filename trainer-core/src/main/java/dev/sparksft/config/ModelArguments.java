package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * Which model to start from (LLaMA-Factory's ModelArguments): a Hugging Face model directory and,
 * for LoRA, an optional PEFT adapter directory to continue training or to predict with; and
 * activation checkpointing, which LLaMA-Factory turns on unless disable_gradient_checkpointing
 * ({@code gradient_checkpointing}, Hugging Face's spelling, is accepted too); where and in what
 * shard size (GB, as Hugging Face counts: 10^9 bytes) {@code sft export} writes; and the tokens
 * added to the tokenizer ({@code add_tokens}, {@code add_special_tokens}: comma-separated, each
 * stripped, as LLaMA-Factory splits them) with {@code resize_vocab}, which grows the embedding and
 * the LM head to cover them ({@code model/VocabResize}).
 */
public record ModelArguments(@JsonProperty("model_name_or_path") String modelNameOrPath,
                             @JsonProperty("adapter_name_or_path") String adapterNameOrPath,
                             @JsonProperty("export_dir") String exportDir,
                             @JsonProperty("export_size") Integer exportSize,
                             @JsonProperty("disable_gradient_checkpointing") Boolean disableGradientCheckpointing,
                             @JsonProperty("gradient_checkpointing") Boolean gradientCheckpointing,
                             @JsonProperty("resize_vocab") Boolean resizeVocab,
                             @JsonProperty("add_tokens") String addTokens,
                             @JsonProperty("add_special_tokens") String addSpecialTokens) {
    public ModelArguments {
        resizeVocab = resizeVocab != null && resizeVocab;
        exportSize = exportSize == null ? 5 : exportSize;   // GB per shard of an export, LLaMA-Factory's default
        List<String> problems = new ArrayList<>();
        if (exportSize < 1) {
            problems.add("export_size must be >= 1 (GB per file of the exported model), got " + exportSize);
        }
        if (disableGradientCheckpointing != null && gradientCheckpointing != null
                && disableGradientCheckpointing == gradientCheckpointing) {
            problems.add("disable_gradient_checkpointing: " + disableGradientCheckpointing + " contradicts "
                    + "gradient_checkpointing: " + gradientCheckpointing + "; set only one of them");
        }
        if (modelNameOrPath == null || modelNameOrPath.isBlank()) {
            problems.add("model_name_or_path is required: the directory of a Hugging Face model (config.json, "
                    + "*.safetensors, tokenizer.json); make one with `scripts/sft make-tiny-model`");
        }
        if (adapterNameOrPath != null && adapterNameOrPath.contains(",")) {
            problems.add("adapter_name_or_path: one adapter directory is supported, got '" + adapterNameOrPath
                    + "'; merge the others first with `scripts/sft export`");
        }
        ConfigProblems.throwIfAny(problems);
    }

    /** add_tokens as LLaMA-Factory splits it: at commas, each token stripped; empty when unset. */
    public List<String> tokensToAdd() {
        return split(addTokens);
    }

    /** add_special_tokens as LLaMA-Factory splits it. */
    public List<String> specialTokensToAdd() {
        return split(addSpecialTokens);
    }

    private static List<String> split(String tokens) {
        if (tokens == null) {
            return List.of();
        }
        return java.util.Arrays.stream(tokens.split(",", -1)).map(String::strip).toList();
    }

    /** Activation checkpointing per decoder layer: on unless switched off by either key. */
    public boolean activationCheckpointing() {
        if (disableGradientCheckpointing != null) {
            return !disableGradientCheckpointing;
        }
        return gradientCheckpointing == null || gradientCheckpointing;
    }
}
