package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.generate.Generator;
import dev.sparksft.generate.Sampling;
import dev.sparksft.model.CausalLm;
import dev.sparksft.run.RunData;
import dev.sparksft.template.ChatTemplate;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code sft score CONFIG.yaml [key=value ...]}: greedy generation with the trained model in
 * output_dir for every example of the eval set, and the exact-match rate of the answers (the
 * generated text equals the reference response, both decoded without special tokens and
 * trimmed), also written to {@code output_dir/score_results.json}.
 */
public final class ScoreCommand {
    private static final Logger LOG = LoggerFactory.getLogger(ScoreCommand.class);
    private static final int BATCH = 64;

    private ScoreCommand() {}

    /** @return the exact-match rate in [0, 1] */
    public static double run(SftConfig config, int maxNewTokens) throws IOException {
        if (config.training().outputDir() == null) {
            throw new UserError("output_dir is required: score reads the trained model from it");
        }
        dev.sparksft.run.RankThreads.load(config, config.training().numThreads(), true);
        Path modelDir = Path.of(config.training().outputDir());
        try (Tokenizer raw = Tokenizer.load(modelDir)) {
            RunData data = RunData.load(config, raw);
            if (data.predictSet().isEmpty()) {
                throw new UserError("score needs an eval set: set eval_dataset or val_size");
            }
            // a LoRA output_dir holds the adapter: the base is model_name_or_path
            CausalLm model = dev.sparksft.train.Models.forInference(Path.of(config.model().modelNameOrPath()), modelDir,
                    null, 0, new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU),
                    config.training().seed());
            Tokenizer tok = data.tokenizer();
            ChatTemplate template = data.template();
            List<int[]> prompts = new ArrayList<>();
            List<String> references = new ArrayList<>();
            for (Conversation c : data.predictSet()) {
                prompts.add(template.encodeOneturn(tok, c.messages(), c.system(), c.tools(),
                        config.data().enableThinking().value(), config.data().preserveThinking()).source());
                references.add(c.response().get(0).content().strip());
            }
            int matches = 0;
            int shown = 0;
            for (int from = 0; from < prompts.size(); from += BATCH) {
                List<int[]> batch = prompts.subList(from, Math.min(prompts.size(), from + BATCH));
                List<Generator.Output> out = new Generator(model, Sampling.greedy(maxNewTokens),
                        new HashSet<>(template.stopTokenIds(tok)), tok.padId(), BATCH, true).generate(batch);
                for (int i = 0; i < out.size(); i++) {
                    String predicted = tok.decode(out.get(i).ids(), true).strip();
                    String reference = references.get(from + i);
                    if (predicted.equals(reference)) {
                        matches++;
                    } else if (shown++ < 3) {
                        LOG.info("mismatch: expected '{}', generated '{}'", reference, predicted);
                    }
                }
            }
            double rate = (double) matches / prompts.size();
            java.util.Map<String, Object> results = new java.util.LinkedHashMap<>();
            results.put("exact_match", rate);
            results.put("num_examples", prompts.size());
            java.nio.file.Files.writeString(modelDir.resolve("score_results.json"),
                    new com.fasterxml.jackson.databind.ObjectMapper().writerWithDefaultPrettyPrinter()
                            .writeValueAsString(results));
            LOG.info("exact match on {} held-out examples: {}/{} = {}%", prompts.size(), matches, prompts.size(),
                    String.format("%.1f", 100 * rate));
            return rate;
        }
    }
}
