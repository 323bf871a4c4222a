package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/** Which model to start from (LLaMA-Factory's ModelArguments). */
public record ModelArguments(@JsonProperty("model_name_or_path") String modelNameOrPath) {
    public ModelArguments {
        List<String> problems = new ArrayList<>();
        if (modelNameOrPath == null || modelNameOrPath.isBlank()) {
            problems.add("model_name_or_path is required: the directory of a Hugging Face model (config.json, "
                    + "*.safetensors, tokenizer.json); make one with `scripts/sft make-tiny-model`");
        }
        ConfigProblems.throwIfAny(problems);
    }
}
