package dev.sparksft.run;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.template.ToolFormat;
import dev.sparksft.train.Models;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a run must satisfy before anything is read, loaded or written, for each shell: one set
 * of checks that the command line and the Spark driver both call, so a misconfigured run fails
 * the same way (exit 2, one line) in both.
 */
public final class RunChecks {
    private static final Logger LOG = LoggerFactory.getLogger(RunChecks.class);

    private RunChecks() {}

    /** {@code sft train}: one process, so world_size 1. */
    public static void singleProcess(SftConfig config) {
        TrainingArguments args = config.training();
        requireOutputDir(args);
        if (!args.doTrain() && !args.doEval() && !args.doPredict()) {
            throw new UserError("nothing to do: set do_train, do_eval or do_predict to true");
        }
        if (!RunData.hasTokenized(config.data())) {
            config.data().requireDataset();
        }
        if (config.distributed().worldSize() > 1) {
            throw new UserError("world_size " + config.distributed().worldSize() + " needs the Spark driver: "
                    + "run scripts/spark-sft (sft train is one process; world_size is 1 there)");
        }
        Models.requireFp8Support(config, config.distributed().cuda());
        requireKnownToolFormat(config);
        outputIsNotAnInput(config);
    }

    /**
     * The Spark job: it trains (evaluating after training with do_eval) and predicts; fp8 is
     * refused here, on the driver, rather than by every rank after Spark's retries.
     */
    public static void sparkJob(SftConfig config) {
        TrainingArguments args = config.training();
        requireOutputDir(args);
        if (!args.doTrain() && !args.doPredict()) {
            throw new UserError("nothing to do: set do_train (and/or do_predict with predict_with_generate) to true");
        }
        config.data().requireDataset();
        if (config.data().tokenizedPath() != null) {
            LOG.warn("tokenized_path {} has no effect in the Spark job, which tokenizes on its executors from "
                    + "dataset (scripts/sft train reads and writes it)", config.data().tokenizedPath());
        }
        if (args.doEval() && !args.doTrain()) {
            throw new UserError("do_train: false: the Spark job trains (and evaluates after training with "
                    + "do_eval); to evaluate a saved model alone use scripts/sft train with do_train: false");
        }
        if (args.doTrain()) {
            Models.requireFp8Support(config, config.distributed().cuda());
        }
        if (args.doTrain() && config.finetuning().layerwise()) {
            String key = config.finetuning().layerwiseKey();
            throw new UserError(key + ": true: Distributed training does not support layer-wise "
                    + (config.finetuning().useGalore() ? "GaLore" : "APOLLO") + " (LLaMA-Factory), and the Spark job "
                    + "trains as distributed ranks (barrier tasks with collectives) whatever world_size is; train in one "
                    + "process with scripts/sft train, or set " + key + ": false");
        }
        requireKnownToolFormat(config);   // on the driver, not in every executor that tokenizes
        outputIsNotAnInput(config);
    }

    private static void requireKnownToolFormat(SftConfig config) {
        if (config.data().toolFormat() != null) {
            ToolFormat.of(config.data().toolFormat());
        }
    }

    /** Training needs the training set. */
    public static void requireTrainingSet(int numTrain) {
        if (numTrain == 0) {
            throw new UserError("do_train needs dataset, the training set; to evaluate or predict a model without "
                    + "training, set do_train: false and eval_dataset");
        }
    }

    /**
     * A training set with no labelled token left (cutoff_len cut every response) would train
     * "loss 0.0000" and change nothing: refused. Examples that lost all of theirs add nothing to
     * the loss; they are counted in a warning.
     *
     * @param numTargets       labelled tokens of the training set
     * @param withoutTargets   examples with none
     */
    public static void requireLabelledTargets(long numTargets, long withoutTargets, long numExamples, int cutoffLen) {
        if (numTargets == 0) {
            throw new UserError("no labelled token is left in the training set after cutoff_len " + cutoffLen
                    + ": every response was cut away (or masked); raise cutoff_len, or check train_on_prompt and the "
                    + "dataset's response column");
        }
        if (withoutTargets > 0) {
            LOG.warn("{} of {} training examples keep no labelled token after cutoff_len {} (the response was cut "
                    + "away or masked): they add nothing to the loss; raise cutoff_len to train on them",
                    withoutTargets, numExamples, cutoffLen);
        }
    }

    /** Every rank must train: a training set smaller than world_size leaves some without data. */
    public static void enoughExamples(int numTrain, int worldSize) {
        if (numTrain < worldSize) {
            throw new UserError("the training set has " + numTrain + " example(s), fewer than "
                    + "world_size " + worldSize + ": some ranks would never train; lower world_size");
        }
    }

    /**
     * A training run writes output_dir; it must not be a directory the run reads (the model or the
     * adapter): overwrite_output_dir would delete the input it is about to load.
     */
    public static void outputIsNotAnInput(SftConfig config) {
        if (!config.training().doTrain()) {
            return;
        }
        String out = normalized(config.training().outputDir());
        for (String[] input : new String[][] {{"model_name_or_path", config.model().modelNameOrPath()},
                {"adapter_name_or_path", config.model().adapterNameOrPath()}}) {
            if (input[1] != null && normalized(input[1]).equals(out)) {
                throw new UserError("output_dir " + config.training().outputDir() + " is " + input[0]
                        + ": training writes output_dir and would replace the model it reads; choose another output_dir");
            }
        }
    }

    private static String normalized(String pathOrUri) {
        String s = pathOrUri.replaceAll("/+$", "");
        return s.contains("://") || s.startsWith("file:") ? s
                : java.nio.file.Path.of(s).toAbsolutePath().normalize().toString();
    }

    private static void requireOutputDir(TrainingArguments args) {
        if (args.outputDir() == null || args.outputDir().isBlank()) {
            throw new UserError("output_dir is required: where checkpoints, the final model and the logs go");
        }
    }
}
