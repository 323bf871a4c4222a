package dev.sparksft.spark;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.train.BatchPlan;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.TrainingSetup;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.run.DiskEstimate;
import dev.sparksft.run.MemoryEstimate;
import dev.sparksft.run.RunChecks;
import org.apache.spark.api.java.JavaSparkContext;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * The distributed training job (docs/ARCHITECTURE.md, data flow): Spark reads and tokenizes the dataset,
 * gives every example of every epoch its slot and routes each rank its slots in order, then one
 * barrier task per rank trains. A shuffle after the barrier stage makes it a ShuffleMapStage, the
 * kind Spark retries as a whole when a rank fails (spark.stage.maxConsecutiveAttempts); the retry
 * resumes from the newest checkpoint.
 */
public final class TrainingJob {
    private static final Logger LOG = LoggerFactory.getLogger(TrainingJob.class);
    /** SparkContext.SPARK_JOB_INTERRUPT_ON_CANCEL: kill a job's tasks with Thread.interrupt, not only a flag. */
    private static final String INTERRUPT_ON_CANCEL = "spark.job.interruptOnCancel";

    private TrainingJob() {}

    /** device: cuda on a cluster needs Spark to give each training task a GPU; say so before anything runs. */
    private static void requireGpuScheduling(SparkSession spark, boolean cuda) {
        if (!cuda || spark.sparkContext().isLocal()) {
            return;
        }
        org.apache.spark.SparkConf conf = spark.sparkContext().getConf();
        List<String> missing = java.util.stream.Stream.of("spark.executor.resource.gpu.amount",
                "spark.task.resource.gpu.amount").filter(k -> !conf.contains(k)).toList();
        if (!missing.isEmpty()) {
            throw new UserError("device: cuda, but Spark assigned no GPU to training task: " + missing
                    + " not set. Set " + GpuAssignment.SETTINGS);
        }
    }

    /**
     * resume_from_checkpoint as the ranks take it: for true on a Hadoop output_dir "checkpoint-N",
     * the newest (rank 0 verifies its download and falls back to an older one if it is corrupt), a
     * local checkpoint path (verified here: as given, or the newest intact one of a local
     * output_dir), or null.
     */
    private static String resumePoint(String resume, OutputMirror output) throws IOException {
        if (!Checkpoints.resumes(resume)) {
            return null;
        }
        if (Checkpoints.resumesLatest(resume) && output.isRemote()) {
            return output.latestCheckpoint().orElseThrow(() -> Checkpoints.noCheckpoint(output.describe()));
        }
        return Checkpoints.resumeDir(resume, output.localDir()).toAbsolutePath().toString();
    }

    /**
     * Trains with the configuration {@code values} (the YAML's keys with overrides applied).
     *
     * @param progress where the driver prints progress lines while the stage runs
     * @return each rank's summary as JSON, rank 0 first
     */
    public static List<String> run(SparkSession spark, ObjectNode values, PrintStream progress) throws IOException {
        SftConfig config = SftConfig.fromValues(values);
        TrainingArguments args = config.training();
        int worldSize = config.distributed().worldSize();
        RunChecks.sparkJob(config);
        if (!args.doTrain()) {
            throw new IllegalStateException("the training job runs with do_train: true only (SparkSftMain chooses the stages)");
        }
        requireGpuScheduling(spark, config.distributed().cuda());
        TaskSlots.require(spark.sparkContext(), worldSize, config.distributed().cuda());
        Path modelDir = ModelFiles.local(config.model().modelNameOrPath());
        Double gpuGb = config.distributed().deviceMemoryGb();
        if (config.distributed().cuda() && gpuGb != null) {   // before any GPU is taken or data read
            MemoryEstimate.of(config, ModelConfig.load(modelDir)).requireFits((long) (gpuGb * 1073741824.0));
        }
        OutputMirror output = OutputMirror.of(args.outputDir(), spark.sparkContext().hadoopConfiguration());
        String resume = resumePoint(args.resumeFromCheckpoint(), output);
        output.check(args.overwriteOutputDir(), resume != null);   // refusals now, deletions after the data is read
        ModelConfig.load(modelDir);                                  // the model's config.json, before anything changes

        String configJson = RunConfig.json(values);
        SparkDataset.Loaded data = new SparkDataset(JavaSparkContext.fromSparkContext(spark.sparkContext()), config.data(),
                new ExecutorEncoders.Key(configJson), config.distributed().skipBadRows()).load(args.seed());
        RunChecks.enoughExamples(data.numTrain(), worldSize);
        long[] labelled = data.train().map(ex -> new long[] {ex.numTargets(), ex.numTargets() == 0 ? 1 : 0})
                .reduce((a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});   // labelled tokens, examples without
        RunChecks.requireLabelledTargets(labelled[0], labelled[1], data.numTrain(), config.data().cutoffLen());
        output.requireSpace(DiskEstimate.of(config, ModelConfig.load(modelDir), modelDir, data.numTrain(), resume == null ? 0
                : resume.startsWith("checkpoint-") ? Checkpoints.stepOf(resume) : Checkpoints.step(Path.of(resume))),
                args.overwriteOutputDir(), resume != null);
        output.prepare(args.overwriteOutputDir(), resume != null);   // only now may overwrite delete the previous run
        BatchPlan plan = TrainingSetup.plan(data.numTrain(), args, config.finetuning(), worldSize);
        long totalSteps = TrainingSetup.totalSteps(args, plan);
        LOG.info("{} training examples, {} eval examples; {} steps of {} examples on {} ranks", data.numTrain(),
                data.eval().size(), totalSteps, plan.globalBatch(), worldSize);
        LOG.info("a rank that sends no heartbeat for {} s (rank_silence_timeout) fails the stage naming it; a collective"
                + " waits at most {} s (ddp_timeout)", config.distributed().rankSilenceTimeout(), config.distributed().ddpTimeout());
        JavaPairRDD<Slot, TokenizedExample> slots = new SlotAssigner(plan, totalSteps, worldSize,
                args.perDeviceTrainBatchSize()).assign(data.train());

        TrainingStage stage = new TrainingStage(configJson, data.numTrain(), data.eval(), resume,
                spark.sparkContext().isLocal());
        ClassTag<String> tag = ClassTag$.MODULE$.apply(String.class);
        RDD<String> trained = slots.rdd().barrier().mapPartitions(stage, false, tag);
        spark.sparkContext().setJobDescription("spark-sft: train " + totalSteps + " steps on " + worldSize + " ranks");
        // when a rank fails, Spark kills the stage's other tasks; interrupted, their waits for that rank end at once
        String interrupt = spark.sparkContext().getLocalProperty(INTERRUPT_ON_CANCEL);
        spark.sparkContext().setLocalProperty(INTERRUPT_ON_CANCEL, "true");
        try (ProgressReporter reporter = new ProgressReporter(output::readLog, progress)) {
            // the shuffle makes the barrier stage a ShuffleMapStage, which Spark retries after a failure
            List<String> summaries = JavaRDD.fromRDD(trained, tag).repartition(1).collect();
            return summaries.stream().sorted().toList();
        } finally {
            spark.sparkContext().setLocalProperty(INTERRUPT_ON_CANCEL, interrupt);
            data.train().unpersist(false);
        }
    }
}
