package dev.sparksft.run;

import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.RankBatches;
import dev.sparksft.train.Trainer;
import dev.sparksft.train.TrainingSetup;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One rank's part of a run, the same in one process and in a Spark barrier task: the trainer
 * built from the configuration, training from {@code resume} (do_train; rank 0 saves the model
 * and train_results.json), then evaluation (do_eval; rank 0 writes eval_results.json).
 */
public final class RankRun {
    private RankRun() {}

    /** What the rank did: the training result (null without do_train) and the eval metrics (null without do_eval). */
    public record Outcome(Trainer.Result result, Map<String, Object> evalMetrics) {}

    /**
     * @param numExamples the whole training set's size (all ranks)
     * @param batches     this rank's micro-batches
     * @param started     told about the trainer before it runs (a failure report names its step)
     * @param modelDir    model_name_or_path, local (the ASFT loss's reference model is read from it, and a
     *                    vision-language model's preprocessor_config.json)
     * @param media       where the examples' images are read (their paths are resolved already)
     */
    public static Outcome trainAndEvaluate(SftConfig config, CausalLm model, java.nio.file.Path modelDir,
                                           int numExamples, RankBatches batches,
                                           List<TokenizedExample> eval, World world, int padId,
                                           dev.sparksft.train.Outputs outputs, Checkpoints.Loaded resume,
                                           dev.sparksft.data.MediaFiles media, Consumer<Trainer> started) throws IOException {
        TrainingArguments args = config.training();
        TrainingSetup setup = TrainingSetup.of(config, model, numExamples, world, modelDir);
        dev.sparksft.train.BatchImages images = dev.sparksft.train.BatchImages.forModel(model, modelDir, media,
                config.model().imageMaxPixels(), config.model().imageMinPixels());
        Trainer trainer = new Trainer(args, model, setup, batches, eval, world, padId, outputs, images);
        started.accept(trainer);
        Trainer.Result result = args.doTrain() ? trainer.trainAndSave(resume) : null;
        Map<String, Object> metrics = args.doEval() ? trainer.evaluateAndSave(result == null ? 0.0 : result.epoch()) : null;
        return new Outcome(result, metrics);
    }
}
