package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.generate.Predictor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** do_predict as an ordinary Spark stage: the rows of the single-process run, in order, through retries and reruns. */
class PredictionJobTest {
    static final String PREDICT = "do_train: false\ndo_predict: true\npredict_with_generate: true\ndo_sample: false\n"
            + "max_new_tokens: 5\nper_device_eval_batch_size: 2\n";

    @AfterEach
    void clearHooks() {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL_PREDICTION, null);
    }

    @Test
    void rowsMatchTheSingleProcessRunInInputOrderThroughARetriedTask(@TempDir Path dir) throws Exception {
        // 11 examples of 1..120 letters as the predict set, over several tasks
        String extra = PREDICT + "eval_dataset: mixed.jsonl\n";
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, extra)));
        List<String> expected = Files.readAllLines(single.resolve("out/" + Predictor.PREDICTIONS_FILE), StandardCharsets.UTF_8);
        assertEquals(11, expected.size());

        Path spark = Files.createDirectories(dir.resolve("spark"));
        Path marker = dir.resolve("failed-once");
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL_PREDICTION, "1:0:" + marker);
        Map<String, Object> results = PredictionJob.run(SparkTests.spark(), SparkTests.values(spark, extra),
                SparkTests.root().resolve("model").toString());
        assertTrue(Files.exists(marker), "task 1 must have failed once and been retried");
        Path file = spark.resolve("out/" + Predictor.PREDICTIONS_FILE);
        assertEquals(expected, Files.readAllLines(file, StandardCharsets.UTF_8), "same rows, same order, no duplicates");
        assertTrue(results.containsKey("predict_bleu-4") && results.containsKey("predict_rouge-l"), results.toString());
        JsonNode json = SparkTests.JSON.readTree(spark.resolve("out/predict_results.json").toFile());
        assertEquals(((Number) results.get("predict_rouge-1")).doubleValue(), json.get("predict_rouge-1").asDouble(), 0);

        // a rerun replaces the file
        PredictionJob.run(SparkTests.spark(), SparkTests.values(spark, extra), SparkTests.root().resolve("model").toString());
        assertEquals(expected, Files.readAllLines(file, StandardCharsets.UTF_8));
    }

    @Test
    void sampledPredictionsDoNotDependOnTheTasks(@TempDir Path dir) throws Exception {
        String extra = PREDICT.replace("do_sample: false", "do_sample: true\ntemperature: 1.5\ntop_p: 0.9")
                + "eval_dataset: mixed.jsonl\n";
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, extra)));
        Path spark = Files.createDirectories(dir.resolve("spark"));
        PredictionJob.run(SparkTests.spark(), SparkTests.values(spark, extra), SparkTests.root().resolve("model").toString());
        assertEquals(Files.readAllLines(single.resolve("out/" + Predictor.PREDICTIONS_FILE)),
                Files.readAllLines(spark.resolve("out/" + Predictor.PREDICTIONS_FILE)));
    }

    @Test
    void predictionsGoToAHadoopOutputDir(@TempDir Path dir) throws Exception {
        Path remote = dir.resolve("remote");
        PredictionJob.run(SparkTests.spark(), SparkTests.values(dir, PREDICT + "eval_dataset: mixed.jsonl\n",
                "output_dir=testfs://" + remote), SparkTests.root().resolve("model").toString());
        assertEquals(11, Files.readAllLines(remote.resolve(Predictor.PREDICTIONS_FILE)).size());
        assertTrue(Files.isRegularFile(remote.resolve("predict_results.json")));
        assertTrue(Files.isRegularFile(remote.resolve("all_results.json")));
    }
}
