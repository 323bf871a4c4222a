package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.generate.Predictor;
import dev.sparksft.model.LlamaModel;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code sft train CONFIG.yaml [key=value ...]}: single-process SFT, evaluation and prediction with LLaMA-Factory's outputs. */
public final class TrainCommand {
    private static final Logger LOG = LoggerFactory.getLogger(TrainCommand.class);
    private TrainCommand() {}

    /**
     * Generates for the predict set (eval_dataset, or the val_size split) and writes
     * generated_predictions.jsonl and predict_results.json.
     */
    static void predict(SftConfig config, LlamaModel model, PreparedData data, Outputs outputs) throws IOException {
        if (data.eval().isEmpty()) {
            throw new UserError("do_predict needs a predict set: set eval_dataset (or val_size)");
        }
        TrainingArguments args = config.training();
        long start = System.nanoTime();
        List<Predictor.Row> rows = new Predictor(model, data.encoder(), config.generating(),
                args.perDeviceEvalBatchSize(), args.seed()).predict(data.eval());
        Path file = Predictor.write(outputs.dir(), rows);
        double seconds = (System.nanoTime() - start) / 1e9;
        Map<String, Object> results = new LinkedHashMap<>(Predictor.metrics(rows, "predict_"));
        results.put("predict_runtime", seconds);
        results.put("predict_samples_per_second", rows.size() / seconds);
        outputs.writeResults("predict", results);
        LOG.info("predictions for {} examples in {}: {}", rows.size(), file, results);
    }

    public static Trainer.Result run(SftConfig config) throws IOException {
        TrainingArguments args = config.training();
        if (args.outputDir() == null || args.outputDir().isBlank()) {
            throw new UserError("output_dir is required: where checkpoints, the final model and the logs go");
        }
        if (!args.doTrain() && !args.doEval() && !args.doPredict()) {
            throw new UserError("nothing to do: set do_train, do_eval or do_predict to true");
        }
        if (config.distributed().worldSize() > 1) {
            throw new UserError("world_size " + config.distributed().worldSize() + " needs the Spark driver: "
                    + "run scripts/spark-sft (sft train is one process; world_size is 1 there)");
        }
        Torch.load(args.numThreads(), args.intraOpThreads());
        Path modelDir = Path.of(config.model().modelNameOrPath());
        Path outputDir = Path.of(args.outputDir());
        Path resumeDir = Checkpoints.resumeDir(args.resumeFromCheckpoint(), outputDir);
        // only a training run claims output_dir; evaluation and prediction add their files to it
        Outputs outputs = Outputs.prepare(outputDir, modelDir, args.overwriteOutputDir(),
                resumeDir != null || !args.doTrain());
        try (Tokenizer raw = Tokenizer.load(modelDir)) {
            PreparedData data = PreparedData.load(config, raw, args.seed());
            List<TokenizedExample> train = data.encode(data.train());
            if (config.data().packing() && !train.isEmpty()) {
                int before = train.size();
                train = Packing.pack(train, config.data().cutoffLen(), config.data().neatPacking());
                LOG.info("packing: {} examples into {} sequences of at most {} tokens{}", before, train.size(),
                        config.data().cutoffLen(), config.data().neatPacking() ? " (neat: attention within each)" : "");
            }
            List<TokenizedExample> eval = data.encode(data.eval());
            Path adapterDir = config.model().adapterNameOrPath() == null ? null : Path.of(config.model().adapterNameOrPath());
            org.bytedeco.pytorch.Device cpu = new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU);
            LlamaModel model = args.doTrain() || args.doEval()
                    ? Models.forTraining(config, modelDir, resumeDir, adapterDir, data.tokenizer().vocabSize(), cpu)
                    : Models.forInference(modelDir, modelDir, adapterDir, data.tokenizer().vocabSize(), cpu);
            Trainer.Result result = null;
            if (args.doTrain() || args.doEval()) {
                if (train.isEmpty()) {
                    throw new UserError("do_train and do_eval need dataset: the training set (do_eval "
                            + "reports the epoch trained); to generate predictions only, set do_predict alone");
                }
                Trainer trainer = new Trainer(args, config.finetuning(), model, train, eval, World.single(),
                        data.tokenizer().padId(), outputs);
                if (args.doTrain()) {
                    result = trainer.trainAndSave(resumeDir == null ? null : Checkpoints.load(resumeDir));
                }
                if (args.doEval()) {
                    Map<String, Object> metrics = trainer.evaluateAndSave(result == null ? 0.0 : result.epoch());
                    if (args.predictWithGenerate()) {   // Seq2SeqTrainer: evaluation also generates
                        List<Predictor.Row> rows = new Predictor(model, data.encoder(), config.generating(),
                                args.perDeviceEvalBatchSize(), args.seed()).predict(data.eval());
                        metrics.putAll(Predictor.metrics(rows, "eval_"));
                        outputs.writeResults("eval", metrics);
                    }
                }
            }
            if (args.doPredict()) {
                predict(config, model, data, outputs);
            }
            return result;
        }
    }
}
