package dev.sparksft.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.model.TinyModel;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * What the Spark tests share: one local[4,2] session (4 task slots; a failed ordinary task is
 * retried once), a tiny model, a dataset of very different lengths.
 */
final class SparkTests {
    static final ObjectMapper JSON = new ObjectMapper();
    private static SparkSession spark;
    private static Path root;

    private SparkTests() {}

    static synchronized SparkSession spark() {
        if (spark == null || spark.sparkContext().isStopped()) {
            Torch.load(1);
            spark = SparkSession.builder().master("local[4,2]").appName("spark-sft-test")
                    .config("spark.ui.enabled", "false")
                    .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.sql.shuffle.partitions", "4").config("spark.default.parallelism", "4")
                    .config("spark.barrier.sync.timeout", "60s")
                    // a failed training stage is retried once here (Spark's default is 4 attempts)
                    .config("spark.stage.maxConsecutiveAttempts", "2")
                    .config("spark.hadoop.fs.testfs.impl", TestFs.class.getName())
                    .getOrCreate();
            spark.sparkContext().setLogLevel("WARN");
        }
        return spark;
    }

    /** Stops the shared session (a test that needs another master makes its own). */
    static synchronized void stop() {
        if (spark != null) {
            spark.stop();
            spark = null;
        }
    }

    /** A folder with model/ (tiny llama) and data/ (11 examples of 1..120 letters) made once per JVM. */
    static synchronized Path root() throws IOException {
        if (root == null) {
            root = Files.createTempDirectory("spark-sft-test");
            TinyModel.write(new TinyModel.Options("llama", root.resolve("model"), 3, 32, 2, 4, 2, 64, null, 0, 0));
            Path data = root.resolve("data");
            Files.createDirectories(data);
            try (BufferedWriter w = Files.newBufferedWriter(data.resolve("mixed.jsonl"))) {
                int[] lengths = {1, 120, 7, 64, 3, 90, 15, 2, 33, 110, 5};
                for (int i = 0; i < lengths.length; i++) {
                    String s = "abcdefghij".repeat(13).substring(0, lengths[i]);
                    w.write(JSON.writeValueAsString(Map.of("instruction", "Echo", "input", s,
                            "output", s.substring(0, Math.max(1, s.length() / 2)))) + "\n");
                }
            }
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteQuietly(root)));
        }
        return root;
    }

    static String baseYaml(Path out) throws IOException {
        Path r = root();
        return "model_name_or_path: " + r.resolve("model") + "\ntemplate: chatml\ndataset: mixed.jsonl\ndataset_dir: "
                + r.resolve("data") + "\ncutoff_len: 256\nstage: sft\ndo_train: true\nfinetuning_type: full\n"
                + "output_dir: " + out + "\nlogging_steps: 1\nsave_steps: 1000\nnum_threads: 1\nintra_op_threads: 1\nddp_timeout: 60\n";
    }

    /** Config values from {@link #baseYaml} plus {@code extra} YAML lines and key=value overrides. */
    static ObjectNode values(Path dir, String extra, String... overrides) throws IOException {
        Path f = Files.createTempFile(dir, "run", ".yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra(baseYaml(dir.resolve("out")), extra));
        return SftConfig.loadValues(f, List.of(overrides));
    }

    private static void deleteQuietly(Path p) {
        try (var walk = Files.walk(p)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        } catch (IOException ignored) {
            // a temp folder
        }
    }
}
