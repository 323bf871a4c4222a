package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * Which model to start from (LLaMA-Factory's ModelArguments): a Hugging Face model directory and,
 * for LoRA, an optional PEFT adapter directory to continue training or to predict with; and
 * activation checkpointing, which LLaMA-Factory turns on unless disable_gradient_checkpointing
 * ({@code gradient_checkpointing}, Hugging Face's spelling, is accepted too); where and in what
 * shard size (GB, as Hugging Face counts: 10^9 bytes) {@code sft export} writes.
 */
public record ModelArguments(@JsonProperty("model_name_or_path") String modelNameOrPath,
                             @JsonProperty("adapter_name_or_path") String adapterNameOrPath,
                             @JsonProperty("export_dir") String exportDir,
                             @JsonProperty("export_size") Integer exportSize,
                             @JsonProperty("disable_gradient_checkpointing") Boolean disableGradientCheckpointing,
                             @JsonProperty("gradient_checkpointing") Boolean gradientCheckpointing) {
    public ModelArguments {
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

    /** Activation checkpointing per decoder layer: on unless switched off by either key. */
    public boolean activationCheckpointing() {
        if (disableGradientCheckpointing != null) {
            return !disableGradientCheckpointing;
        }
        return gradientCheckpointing == null || gradientCheckpointing;
    }
}
