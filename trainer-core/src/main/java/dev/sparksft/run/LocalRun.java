package dev.sparksft.run;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.DatasetRules;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.generate.Predictor;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Autocast;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.data.LocalMediaFiles;
import dev.sparksft.train.BatchImages;
import dev.sparksft.train.Evaluator;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.PlannedBatches;
import dev.sparksft.train.Trainer;
import dev.sparksft.train.TrainingSetup;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A whole run in one process: checks, output_dir, data, model, then {@link RankRun} (train,
 * evaluate) as the only rank, evaluation with generation, prediction. The Spark job runs the
 * same steps, each where Spark puts it (data on executors, ranks in barrier tasks, prediction as
 * its own stage), with the same shared pieces.
 */
public final class LocalRun {
    private static final Logger LOG = LoggerFactory.getLogger(LocalRun.class);

    private LocalRun() {}

    /** @return the training result, or null when the run did not train */
    public static Trainer.Result run(SftConfig config) throws IOException {
        RunChecks.singleProcess(config);
        TrainingArguments args = config.training();
        RankThreads.load(config, args.numThreads(), true);
        Path modelDir = Path.of(config.model().modelNameOrPath());
        Path outputDir = Path.of(args.outputDir());
        Path resumeDir = Checkpoints.resumeDir(args.resumeFromCheckpoint(), outputDir);
        // only a training run claims output_dir; evaluation and prediction add their files to it
        boolean keeps = resumeDir != null || !args.doTrain();
        Outputs.check(outputDir, args.overwriteOutputDir(), keeps);
        try (Tokenizer raw = Tokenizer.load(modelDir)) {
            RunData data = RunData.load(config, raw);
            Path adapterDir = config.model().adapterNameOrPath() == null ? null : Path.of(config.model().adapterNameOrPath());
            Device cpu = new Device(torch.DeviceType.CPU);
            boolean trains = args.doTrain();
            List<TokenizedExample> train = trains ? data.trainExamples() : List.of();
            if (trains) {   // refusals of the data come before the model is read and output_dir touched
                RunChecks.requireTrainingSet(train.size());
                RunChecks.requireLabelledTargets(train.stream().mapToLong(TokenizedExample::numTargets).sum(),
                        train.stream().filter(ex -> ex.numTargets() == 0).count(), train.size(),
                        config.data().cutoffLen());
                // the number of steps, and so of checkpoints, is known: is there room for them, before the model loads?
                DiskEstimate.of(config, ModelConfig.load(modelDir), modelDir, train.size(),
                        resumeDir == null ? 0 : Checkpoints.step(resumeDir)).requireFits(outputDir.toString(),
                        Outputs.freeSpace(outputDir, args.overwriteOutputDir(), keeps));
            }
            if (trains) {
                data.saveTokenized(train);
            }
            if (args.doEval() && data.evalExamples().isEmpty()) {
                throw new UserError("do_eval needs an eval set: set eval_dataset or val_size");
            }
            CausalLm model = trains
                    ? Models.forTraining(config, modelDir, resumeDir, adapterDir, data.encoder().newTokens(), cpu)
                    : Models.forInference(modelDir, modelDir, adapterDir, data.encoder().newTokens(), cpu,
                            config.training().seed(), Models.quantization(config));
            // the data and the model are read: only now may overwrite_output_dir delete the previous run
            Outputs outputs = Outputs.prepare(outputDir, modelDir, args.overwriteOutputDir(), keeps)
                    .withTokenizer(data.tokenizer());
            Trainer.Result result = null;
            if (trains) {
                World world = World.single();
                var plan = TrainingSetup.plan(train.size(), args, config.finetuning(), world.size());
                RankRun.Outcome outcome = RankRun.trainAndEvaluate(config, model, modelDir, train.size(),
                        new PlannedBatches(train, plan, 0, 1, args.perDeviceTrainBatchSize(), args.gradientAccumulationSteps()),
                        data.evalExamples(), world, data.tokenizer().padId(), outputs,
                        resumeDir == null ? null : Checkpoints.load(resumeDir),
                        new dev.sparksft.data.LocalMediaFiles(config.data().mediaDir()), trainer -> { });
                result = outcome.result();
                if (args.doEval() && args.predictWithGenerate()) {   // Seq2SeqTrainer: evaluation also generates
                    Map<String, Object> metrics = outcome.evalMetrics();
                    metrics.putAll(Predictor.metrics(predictor(config, model, data).predict(data.predictSet()), "eval_"));
                    outputs.writeResults("eval", metrics);
                }
            } else if (args.doEval()) {
                evaluate(config, model, data, outputs);
            }
            if (args.doPredict()) {
                predict(config, model, data, outputs);
            }
            return result;
        }
    }

    private static Predictor predictor(SftConfig config, CausalLm model, RunData data) throws IOException {
        return new Predictor(model, data.encoder(), config.generating(), config.training().perDeviceEvalBatchSize(),
                config.training().seed(), images(config, model));
    }

    /** The reader of a vision-language model's images on the local disk ({@link BatchImages#NONE} for text). */
    private static BatchImages images(SftConfig config, CausalLm model) throws IOException {
        return BatchImages.forModel(model, Path.of(config.model().modelNameOrPath()),
                new LocalMediaFiles(config.data().mediaDir()), config.model().imageMaxPixels(),
                config.model().imageMinPixels());
    }

    /**
     * An evaluation-only run (do_train: false, do_eval: true), as Hugging Face's Trainer.evaluate
     * reports it: eval_loss (and eval_accuracy) over eval_dataset, no epoch; with
     * predict_with_generate also the generation metrics, as Seq2SeqTrainer's evaluation does.
     */
    private static void evaluate(SftConfig config, CausalLm model, RunData data, Outputs outputs) throws IOException {
        TrainingArguments args = config.training();
        List<TokenizedExample> eval = data.evalExamples();
        long start = System.nanoTime();
        Map<String, Double> loss;
        try (Autocast autocast = Autocast.bf16(model.device(), args.bf16())) {
            loss = Evaluator.evaluate(model, eval, args.perDeviceEvalBatchSize(), data.tokenizer().padId(),
                    config.finetuning().computeAccuracy(), images(config, model));
        }
        Map<String, Object> metrics = Evaluator.results(loss, (System.nanoTime() - start) / 1e9, eval.size());
        if (args.predictWithGenerate()) {
            metrics.putAll(Predictor.metrics(predictor(config, model, data).predict(data.predictSet()), "eval_"));
        }
        outputs.writeResults("eval", metrics);
        LOG.info("eval: {}", metrics);
    }

    /** Generates for the predict set and writes generated_predictions.jsonl and predict_results.json. */
    private static void predict(SftConfig config, CausalLm model, RunData data, Outputs outputs) throws IOException {
        if (data.predictSet().isEmpty()) {
            throw DatasetRules.noPredictSet();
        }
        long start = System.nanoTime();
        List<Predictor.Row> rows = predictor(config, model, data).predict(data.predictSet());
        Path file = Predictor.write(outputs.dir(), rows);
        Map<String, Object> results = Predictor.results(rows, (System.nanoTime() - start) / 1e9);
        outputs.writeResults("predict", results);
        LOG.info("predictions for {} examples in {}: {}", rows.size(), file, results);
    }
}
