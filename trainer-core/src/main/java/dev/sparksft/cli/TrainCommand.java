package dev.sparksft.cli;

import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.model.LlamaModel;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code sft train CONFIG.yaml [key=value ...]}: single-process SFT with LLaMA-Factory's outputs. */
public final class TrainCommand {
    private static final Logger LOG = LoggerFactory.getLogger(TrainCommand.class);

    private TrainCommand() {}

    public static Trainer.Result run(SftConfig config) throws IOException {
        TrainingArguments args = config.training();
        if (args.outputDir() == null || args.outputDir().isBlank()) {
            throw new IllegalArgumentException("output_dir is required: where checkpoints, the final model and the logs go");
        }
        if (!args.doTrain() && !args.doEval()) {
            throw new IllegalArgumentException("nothing to do: set do_train: true (and/or do_eval: true)");
        }
        config.finetuning().requireImplementedMethod();
        Torch.load(args.numThreads(), args.intraOpThreads());
        Path modelDir = Path.of(config.model().modelNameOrPath());
        Path outputDir = Path.of(args.outputDir());
        Path resumeDir = resumeDir(args.resumeFromCheckpoint(), outputDir);
        Outputs outputs = Outputs.prepare(outputDir, modelDir, args.overwriteOutputDir(), resumeDir != null);
        try (Tokenizer raw = Tokenizer.load(modelDir)) {
            PreparedData data = PreparedData.load(config, raw, args.seed());
            List<TokenizedExample> train = data.encode(data.train());
            List<TokenizedExample> eval = data.encode(data.eval());
            Path weightsDir = resumeDir != null ? resumeDir : modelDir;
            ModelConfig cfg = ModelConfig.load(weightsDir);
            if (cfg.vocabSize() < data.tokenizer().vocabSize()) {
                throw new IllegalArgumentException("the tokenizer has " + data.tokenizer().vocabSize() + " tokens but the "
                        + "model's vocab_size is " + cfg.vocabSize());
            }
            LlamaModel model = new LlamaModel(cfg, ModelWeights.load(weightsDir, cfg));
            Trainer trainer = new Trainer(args, config.finetuning(), model, train, eval, World.single(),
                    data.tokenizer().padId(), outputs);
            Trainer.Result result = null;
            if (args.doTrain()) {
                result = trainer.train(resumeDir == null ? null : Checkpoints.load(resumeDir));
                outputs.saveModel(cfg, model.weights());
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("epoch", result.epoch());
                r.put("train_loss", result.trainLoss());
                r.put("train_runtime", result.runtimeSeconds());
                r.put("train_samples_per_second", result.numSamples() * result.epoch() / result.runtimeSeconds());
                r.put("train_steps_per_second", result.globalStep() / result.runtimeSeconds());
                outputs.writeResults("train", r);
                LOG.info("training done: {} steps, train_loss {}, {} s; model saved to {}", result.globalStep(),
                        String.format("%.4f", result.trainLoss()), String.format("%.1f", result.runtimeSeconds()), outputDir);
            }
            if (args.doEval()) {
                if (eval.isEmpty()) {
                    throw new IllegalArgumentException("do_eval needs an eval set: set eval_dataset or val_size");
                }
                long start = System.nanoTime();
                Map<String, Double> metrics = trainer.evaluate();
                double seconds = (System.nanoTime() - start) / 1e9;
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("epoch", result == null ? 0.0 : result.epoch());
                metrics.forEach((k, v) -> r.put("eval_" + k, v));
                r.put("eval_runtime", seconds);
                r.put("eval_samples_per_second", eval.size() / seconds);
                outputs.writeResults("eval", r);
                LOG.info("eval: {}", r);
            }
            return result;
        }
    }

    /** resume_from_checkpoint: a path, "true" for the latest checkpoint of output_dir, or nothing. */
    static Path resumeDir(String resume, Path outputDir) throws IOException {
        if (resume == null || resume.equalsIgnoreCase("false")) {
            return null;
        }
        if (resume.equalsIgnoreCase("true")) {
            return Checkpoints.latest(outputDir).orElseThrow(() -> new IllegalArgumentException(
                    "resume_from_checkpoint: true, but output_dir " + outputDir + " holds no checkpoint-N directory"));
        }
        Path p = Path.of(resume);
        if (!java.nio.file.Files.isDirectory(p)) {
            throw new IllegalArgumentException("resume_from_checkpoint: " + resume + " is not a directory");
        }
        return p;
    }
}
