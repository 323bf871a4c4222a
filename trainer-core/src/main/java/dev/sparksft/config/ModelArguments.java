package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * Which model to start from (LLaMA-Factory's ModelArguments): a Hugging Face model directory and,
 * for LoRA, an optional PEFT adapter directory to continue training or to predict with.
 */
public record ModelArguments(@JsonProperty("model_name_or_path") String modelNameOrPath,
                             @JsonProperty("adapter_name_or_path") String adapterNameOrPath,
                             @JsonProperty("export_dir") String exportDir) {
    public ModelArguments {
        List<String> problems = new ArrayList<>();
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
}
