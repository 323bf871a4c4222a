package dev.sparksft.config;

import dev.sparksft.UserError;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * What data to train on and how to render it (LLaMA-Factory's DataArguments; same defaults).
 * {@code media_dir} is the folder an images column's relative paths are looked up in first
 * (dataset_dir unless set; {@code data/MediaFiles}).
 */
public record DataArguments(
        @JsonProperty("template") String template,
        @JsonProperty("dataset") List<String> dataset,
        @JsonProperty("eval_dataset") List<String> evalDataset,
        @JsonProperty("dataset_dir") String datasetDir,
        @JsonProperty("cutoff_len") Integer cutoffLen,
        @JsonProperty("train_on_prompt") Boolean trainOnPrompt,
        @JsonProperty("mask_history") Boolean maskHistory,
        @JsonProperty("enable_thinking") Thinking enableThinking,
        @JsonProperty("preserve_thinking") Boolean preserveThinking,
        @JsonProperty("max_samples") Integer maxSamples,
        @JsonProperty("tokenized_path") String tokenizedPath,
        @JsonProperty("default_system") String defaultSystem,
        @JsonProperty("tool_format") String toolFormat,
        @JsonProperty("val_size") Double valSize,
        @JsonProperty("packing") Boolean packing,
        @JsonProperty("neat_packing") Boolean neatPacking,
        @JsonProperty("media_dir") String mediaDir) {

    /**
     * enable_thinking as LLaMA-Factory reads it: true, false, or null (Python's None). Reasoning
     * templates train on the think block with true; with false or null the empty think block
     * closes the prompt instead, and only false also strips every thought from the replies.
     */
    public enum Thinking {
        TRUE, FALSE, NULL;

        /** true, false, or null for None. */
        public Boolean value() {
            return this == NULL ? null : this == TRUE;
        }
    }

    public DataArguments {
        dataset = dataset == null ? List.of() : List.copyOf(dataset);
        evalDataset = evalDataset == null ? List.of() : List.copyOf(evalDataset);
        datasetDir = datasetDir == null ? "data" : datasetDir;
        mediaDir = mediaDir == null ? datasetDir : mediaDir;   // LLaMA-Factory: media_dir defaults to dataset_dir
        cutoffLen = cutoffLen == null ? 2048 : cutoffLen;
        trainOnPrompt = trainOnPrompt != null && trainOnPrompt;
        maskHistory = maskHistory != null && maskHistory;
        enableThinking = enableThinking == null ? Thinking.TRUE : enableThinking;   // LLaMA-Factory's default
        preserveThinking = preserveThinking != null && preserveThinking;
        valSize = valSize == null ? 0.0 : valSize;
        neatPacking = neatPacking != null && neatPacking;
        packing = neatPacking || packing != null && packing;   // LLaMA-Factory: neat_packing implies packing
        List<String> problems = new ArrayList<>();
        if (valSize < 0 || (valSize >= 1 && valSize != Math.floor(valSize))) {
            problems.add("val_size must be a fraction in [0, 1) or a whole number of examples, got " + valSize);
        }
        if (valSize > 0 && !evalDataset.isEmpty()) {
            problems.add("val_size and eval_dataset contradict each other: set only one");
        }
        if (cutoffLen < 2) {
            problems.add("cutoff_len must be >= 2, got " + cutoffLen);
        }
        if (maxSamples != null && maxSamples < 1) {
            problems.add("max_samples must be >= 1, got " + maxSamples);
        }
        if (trainOnPrompt && maskHistory) {
            problems.add("mask_history is incompatible with train_on_prompt: set one of them to false");
        }
        ConfigProblems.throwIfAny(problems);
    }

    /** Training, evaluation, prediction and tokenization read data (an export does not). */
    public void requireDataset() {
        if (dataset.isEmpty() && evalDataset.isEmpty()) {
            throw new dev.sparksft.UserError("dataset is required (or eval_dataset alone, to evaluate or predict): a "
                    + "name from dataset_dir/dataset_info.json or a path to a .json/.jsonl/.parquet file");
        }
    }

    /**
     * Which of {@code n} examples val_size holds out for evaluation, as datasets'
     * train_test_split does: a fraction rounded up, or an integer count, chosen by a permutation
     * seeded with {@code seed}.
     */
    public boolean[] validationSplit(int n, long seed) {
        int numEval = valSize < 1 ? (int) Math.ceil(valSize * n) : valSize.intValue();
        if (numEval >= n) {
            throw new UserError("val_size " + valSize + " leaves no training example of " + n);
        }
        int[] order = dev.sparksft.runtime.Permutation.shuffled(n, new java.util.SplittableRandom(seed));
        boolean[] isEval = new boolean[n];
        for (int i = 0; i < numEval; i++) {
            isEval[order[i]] = true;
        }
        return isEval;
    }
}
