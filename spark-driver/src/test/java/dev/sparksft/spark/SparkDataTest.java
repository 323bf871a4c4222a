package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Datasets through Spark: formats, bad rows, empty data and too few examples, each with a clear error. */
class SparkDataTest {
    static final String SMALL = "per_device_train_batch_size: 1\nmax_steps: 2\nlearning_rate: 1.0e-3\n";

    static List<String> train(ObjectNode values) throws Exception {
        return TrainingJob.run(SparkTests.spark(), values, new PrintStream(new ByteArrayOutputStream(), true));
    }

    static Path writeLines(Path dir, String name, String... lines) throws Exception {
        Path f = dir.resolve(name);
        Files.write(f, List.of(lines));
        return f;
    }

    static String row(String in, String out) throws Exception {
        return SparkTests.JSON.writeValueAsString(Map.of("instruction", "Echo", "input", in, "output", out));
    }

    @Test
    void malformedRowsRefuseTheRunWithFileLineAndCountUnlessSkipped(@TempDir Path dir) throws Exception {
        Path data = writeLines(dir, "bad.jsonl", row("ab", "a"), "{\"instruction\": \"Echo\", \"input\": ", row("cd", "c"),
                "[1, 2]", row("ef", "e"));
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + data)));
        String m = e.getMessage();
        assertTrue(m.startsWith("2 malformed row(s) in the dataset"), m);
        assertTrue(m.contains("bad.jsonl line 2 is not valid JSON") && m.contains("bad.jsonl line 4 is not a JSON object"), m);
        assertTrue(m.contains("skip_bad_rows: true"), m);

        List<String> ranks = train(SparkTests.values(dir, SMALL, "dataset=" + data, "skip_bad_rows=true"));
        assertEquals(1, ranks.size());
        JsonNode state = SparkTests.JSON.readTree(dir.resolve("out/trainer_state.json").toFile());
        assertEquals(3, state.get("num_examples").asInt(), "the three good rows are trained");
    }

    /** Executors read the bytes the local loader reads: an invalid UTF-8 line is named the same way, never decoded as U+FFFD. */
    @Test
    void invalidUtf8IsRefusedByFileAndLineAsInOneProcess(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("latin1.jsonl");
        Files.write(data, (row("ab", "a") + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        Files.write(data, new byte[] {'{', '"', 'o', 'u', 't', 'p', 'u', 't', '"', ':', '"', (byte) 0xe9, '"', '}', '\n'},
                java.nio.file.StandardOpenOption.APPEND);
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + data)));
        assertTrue(e.getMessage().contains("latin1.jsonl is not UTF-8 text at line 2 (byte offset "), e.getMessage());
    }

    /** overwrite_output_dir deletes the previous run only after the job's data has been read. */
    @Test
    void aRunRefusedForItsDataDeletesNoPreviousRun(@TempDir Path dir) throws Exception {
        Path data = writeLines(dir, "good.jsonl", row("ab", "a"), row("cd", "c"));
        train(SparkTests.values(dir, SMALL, "dataset=" + data));
        Path previous = dir.resolve("out/model.safetensors");
        assertTrue(Files.exists(previous));
        Path empty = writeLines(dir, "empty.jsonl");
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + empty, "overwrite_output_dir=true")));
        assertTrue(e.getMessage().contains("is empty"), e.getMessage());
        assertTrue(Files.exists(previous), "the previous run's model survives");
    }

    @Test
    void emptyDatasetAndFewerExamplesThanRanksAreClearErrors(@TempDir Path dir) throws Exception {
        Path empty = writeLines(dir, "empty.jsonl");
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + empty)));
        assertTrue(e.getMessage().contains("is empty"), e.getMessage());

        Path one = writeLines(dir, "one.jsonl", row("ab", "a"));
        e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + one, "world_size=2")));
        assertTrue(e.getMessage().contains("1 example(s), fewer than world_size 2"), e.getMessage());
    }

    @Test
    void readsParquetAndHadoopUrisLikeTheSingleProcessLoaderReadsJson(@TempDir Path dir) throws Exception {
        // the same 11 rows as Parquet, read through a file: URI; the loss curve must equal the JSON run's
        Path json = SparkTests.root().resolve("data/mixed.jsonl");
        Dataset<Row> df = SparkTests.spark().read().json(json.toString()).select("instruction", "input", "output");
        Path parquet = dir.resolve("mixed.parquet");
        df.coalesce(1).write().parquet(parquet.toString());

        String batchOf4 = SMALL.replace("per_device_train_batch_size: 1", "per_device_train_batch_size: 4");
        Path fromJson = Files.createDirectories(dir.resolve("json"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(fromJson, batchOf4)));
        Path fromParquet = Files.createDirectories(dir.resolve("parquet"));
        train(SparkTests.values(fromParquet, batchOf4, "dataset=" + parquet.toUri()));
        assertEquals(DistributedTrainingTest.losses(fromJson.resolve("out")),
                DistributedTrainingTest.losses(fromParquet.resolve("out")));
    }

    @Test
    void toolCallDatasetsTrainAsInOneProcess(@TempDir Path dir) throws Exception {
        // LLaMA-Factory's glaive_toolcall demo sets and openai rows (trainer-core's test resources): tools
        // column, function_call and observation turns tokenized on the executors as in one process
        Path data = Files.createDirectories(dir.resolve("data"));
        for (String f : List.of("dataset_info.json", "glaive_toolcall_en_demo.json", "glaive_toolcall_zh_demo.json",
                "openai_tools_demo.json")) {
            try (var in = SparkDataTest.class.getResourceAsStream("/tools/" + f)) {
                Files.copy(in, data.resolve(f));
            }
        }
        String glaive = SMALL.replace("per_device_train_batch_size: 1", "per_device_train_batch_size: 3")
                + "dataset: glaive_toolcall_en_demo,glaive_toolcall_zh_demo,openai_tools_demo\n"
                + "dataset_dir: " + data + "\nmax_samples: 3\ncutoff_len: 512\n";
        Path local = Files.createDirectories(dir.resolve("local"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(local, glaive)));
        Path spark = Files.createDirectories(dir.resolve("spark"));
        train(SparkTests.values(spark, glaive));
        assertEquals(DistributedTrainingTest.losses(local.resolve("out")), DistributedTrainingTest.losses(spark.resolve("out")));
        JsonNode state = SparkTests.JSON.readTree(spark.resolve("out/trainer_state.json").toFile());
        assertEquals(9, state.get("num_examples").asInt(), "3 rows of each set");
    }

    @Test
    void tokensAddedToTheTokenizerAreTheSameOnTheExecutors(@TempDir Path dir) throws Exception {
        // add_special_tokens and llama3's stop words, missing from the test model's ChatML tokenizer, get the same
        // ids on the executors (they call trainer-core's SupervisedEncoder.of); the resized model trains alike
        String added = SMALL + "add_special_tokens: <tool>\n";
        Path local = Files.createDirectories(dir.resolve("local"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(local, added, "template=llama3")));
        Path spark = Files.createDirectories(dir.resolve("spark"));
        train(SparkTests.values(spark, added, "template=llama3"));
        assertEquals(DistributedTrainingTest.losses(local.resolve("out")), DistributedTrainingTest.losses(spark.resolve("out")));
        assertEquals(Files.readString(local.resolve("out/tokenizer.json")), Files.readString(spark.resolve("out/tokenizer.json")));
        assertTrue(Files.readString(spark.resolve("out/tokenizer.json")).contains("<|eom_id|>"));
        assertEquals(SparkTests.JSON.readTree(local.resolve("out/config.json").toFile()).get("vocab_size"),
                SparkTests.JSON.readTree(spark.resolve("out/config.json").toFile()).get("vocab_size"));
    }

    @Test
    void invalidExamplesAreDroppedAsTheSingleProcessLoaderDrops(@TempDir Path dir) throws Exception {
        // a row without an output is invalid for LLaMA-Factory: dropped with a warning, the rest trains
        String noOutput = "{\"instruction\": \"Echo\", \"input\": \"cd\"}";
        Path data = writeLines(dir, "some-invalid.jsonl", row("ab", "a"), noOutput, row("ef", "e"));
        train(SparkTests.values(dir, SMALL, "dataset=" + data));
        JsonNode state = SparkTests.JSON.readTree(dir.resolve("out/trainer_state.json").toFile());
        assertEquals(2, state.get("num_examples").asInt());

        Path allBad = writeLines(dir, "all-invalid.jsonl", "{\"instruction\": \"Echo\", \"input\": \"cd\", \"output\": null}");
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> train(SparkTests.values(dir, SMALL, "dataset=" + allBad, "overwrite_output_dir=true")));
        assertTrue(e.getMessage().contains("has no valid example") && e.getMessage().contains("all-invalid.jsonl line 1"),
                e.getMessage());
    }

    @Test
    void datasetInfoFilesAndTheModelOnHadoopPaths(@TempDir Path dir) throws Exception {
        Path remote = Files.createDirectories(dir.resolve("remote-data"));
        writeLines(remote, "qa.jsonl", "{\"q\": \"ab\", \"a\": \"a\"}", "{\"q\": \"cd\", \"a\": \"c\"}",
                "{\"q\": \"ef\", \"a\": \"e\"}");
        Files.writeString(remote.resolve("dataset_info.json"),
                "{\"qa\": {\"file_name\": \"qa.jsonl\", \"columns\": {\"prompt\": \"q\", \"response\": \"a\"}}}");
        writeLines(remote, "plain.jsonl", row("ab", "a"), row("cd", "c"));
        String uri = "testfs://" + remote;

        // the model too comes through the Hadoop client (copied once per executor JVM)
        String model = "testfs://" + SparkTests.root().resolve("model");
        train(SparkTests.values(dir, SMALL, "dataset_dir=" + uri, "dataset=qa,plain.jsonl", "model_name_or_path=" + model));
        JsonNode state = SparkTests.JSON.readTree(dir.resolve("out/trainer_state.json").toFile());
        assertEquals(5, state.get("num_examples").asInt(), "3 rows of qa (its columns from dataset_info.json) + 2");
        assertTrue(Files.isRegularFile(dir.resolve("out/tokenizer.json")), "the tokenizer of the copied model is saved");

        Exception e = assertThrows(IllegalArgumentException.class, () -> train(SparkTests.values(dir, SMALL,
                "dataset_dir=" + uri, "dataset=qb", "overwrite_output_dir=true")));
        assertTrue(e.getMessage().contains("'qb' is neither defined in " + uri + "/dataset_info.json"), e.getMessage());
    }
}
