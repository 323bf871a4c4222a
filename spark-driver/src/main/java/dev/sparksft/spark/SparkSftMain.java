package dev.sparksft.spark;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.run.RunChecks;
import dev.sparksft.template.Templates;
import dev.sparksft.config.SftConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * {@code spark-submit --class dev.sparksft.spark.SparkSftMain JAR CONFIG.yaml [key=value ...]}:
 * distributed SFT, then (do_predict) distributed prediction. Exits 0 only when every requested stage
 * finished; otherwise prints one line saying why (for schedulers and pipelines) and exits 1 (bad
 * configuration or data: 2).
 */
public final class SparkSftMain {
    private SparkSftMain() {}

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    static int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h")) {
            System.err.println("usage: spark-submit --class " + SparkSftMain.class.getName()
                    + " spark-sft-driver.jar CONFIG.yaml [key=value ...]");
            return argv.length == 0 ? 2 : 0;
        }
        ObjectNode values;
        SftConfig config;
        try {
            List<String> overrides = new ArrayList<>(List.of(argv).subList(1, argv.length));
            values = SftConfig.loadValues(Path.of(argv[0]), overrides);
            config = SftConfig.fromValues(values, Templates::problem);
            RunChecks.sparkJob(config);
        } catch (UserError e) {
            System.err.println("spark-sft: " + e.getMessage());
            return 2;
        } catch (java.io.IOException e) {
            System.err.println("spark-sft: cannot read the configuration " + argv[0] + ": " + e);
            return 2;
        }
        SparkConf conf = new SparkConf().setAppName("spark-sft");
        // without spark-submit or --master: one JVM, one thread per rank
        conf.setIfMissing("spark.master", "local[" + config.distributed().worldSize() + "]");
        // the training stage's one Spark barrier call is the meeting where the ranks learn rank 0's store address,
        // before their heartbeats start: a rank that does not come fails the stage after rank_silence_timeout,
        // not after Spark's default of 365 days (nor after ddp_timeout, which examples set to years)
        conf.setIfMissing("spark.barrier.sync.timeout", config.distributed().rankSilenceTimeout() + "s");
        conf.setIfMissing("spark.executorEnv.OMP_WAIT_POLICY", "passive");
        // glibc keeps freed tensors in its heap once its mmap threshold has risen: pin it (executor JVMs)
        conf.setIfMissing("spark.executorEnv.MALLOC_MMAP_THRESHOLD_", "131072");
        SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
        try {
            if (config.training().doTrain()) {
                List<String> summaries = TrainingJob.run(spark, values, System.out);
                System.out.println("[spark-sft] training finished: " + summaries.get(0));
                if (config.training().doEval() && config.training().predictWithGenerate()) {
                    System.out.println("[spark-sft] evaluation with generation: "
                            + PredictionJob.evaluate(spark, values, config.training().outputDir()));
                }
            }
            if (config.training().doPredict()) {
                // the model just trained, or the given one for a prediction-only run
                String model = config.training().doTrain() ? config.training().outputDir()
                        : config.model().modelNameOrPath();
                System.out.println("[spark-sft] predictions: " + PredictionJob.run(spark, values, model));
            }
            return 0;
        } catch (UserError e) {       // the user's mistake, found on the driver: one line, exit 2
            System.err.println("spark-sft: " + e.getMessage());
            return 2;
        } catch (Exception e) {       // a failed rank, machine or bug: the line a scheduler shows, then the trace
            UserError onExecutor = Failures.userError(e);
            if (onExecutor != null) {   // the user's mistake, found where the rows are read: one line, exit 2
                System.err.println("spark-sft: " + onExecutor.getMessage());
                return 2;
            }
            System.err.println("spark-sft: training failed: " + Failures.oneLine(e));
            e.printStackTrace();
            return 1;
        } finally {
            spark.stop();
        }
    }
}
