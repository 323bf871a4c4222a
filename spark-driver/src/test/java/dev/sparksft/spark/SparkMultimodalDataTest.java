package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.run.RunData;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's mllm_demo read by Spark's executors (images resolved and their headers read
 * there, through the Hadoop client) gives the examples the local reader gives: the same ids,
 * labels, image grids, and the same images (as file: URIs, the local reader's as paths), also
 * when dataset_dir is on another Hadoop file system.
 */
class SparkMultimodalDataTest {
    /** The demo set and a Qwen2-VL model directory (tokenizer + preprocessor config) from trainer-core's test resources. */
    static Path[] fixture(Path dir) throws Exception {
        Path data = Files.createDirectories(dir.resolve("data/mllm_demo_data"));
        Path model = Files.createDirectories(dir.resolve("model"));
        for (String f : List.of("dataset_info.json", "mllm_demo.json", "mllm_demo_data/1.jpg", "mllm_demo_data/2.jpg",
                "mllm_demo_data/3.jpg")) {
            copy("/mllm/" + f, dir.resolve("data").resolve(f));
        }
        copy("/templates/real-tokenizers/qwen3/tokenizer.json", model.resolve("tokenizer.json"));
        copy("/templates/real-tokenizers/qwen3/tokenizer_config.json", model.resolve("tokenizer_config.json"));
        copy("/mllm/qwen2_vl/preprocessor_config.json", model.resolve("preprocessor_config.json"));
        return new Path[] {dir.resolve("data"), model};
    }

    static void copy(String resource, Path to) throws Exception {
        try (InputStream in = SparkMultimodalDataTest.class.getResourceAsStream(resource)) {
            Files.copy(in, to);
        }
    }

    static ObjectNode values(String datasetDir, Path model, String... more) {
        ObjectNode v = SparkTests.JSON.createObjectNode();
        v.put("model_name_or_path", model.toString());
        v.put("template", "qwen2_vl");
        v.put("dataset", "mllm_demo");
        v.put("dataset_dir", datasetDir);
        v.put("cutoff_len", 2048);
        for (int i = 0; i < more.length; i += 2) {
            v.put(more[i], more[i + 1]);
        }
        return v;
    }

    static List<TokenizedExample> spark(ObjectNode values) {
        SftConfig config = SftConfig.fromValues(values);
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(SparkTests.spark().sparkContext());
        List<TokenizedExample> out = new ArrayList<>(new SparkDataset(jsc, config.data(),
                new ExecutorEncoders.Key(RunConfig.json(values)), false).load(42).train().collect());
        out.sort(Comparator.comparingLong(TokenizedExample::index));
        return out;
    }

    static List<TokenizedExample> local(ObjectNode values, Path model) throws Exception {
        SftConfig config = SftConfig.fromValues(values);
        try (Tokenizer raw = Tokenizer.load(model)) {
            RunData run = RunData.fromDatasets(config, raw);
            return run.encode(run.train());
        }
    }

    /** A file: URI as the local path it names; other paths unchanged. */
    static String localPath(String path) {
        return path.startsWith("file:") || path.startsWith("testfs:") ? Path.of(URI.create(path).getPath()).toString()
                : path;
    }

    static void assertSame(List<TokenizedExample> expected, List<TokenizedExample> actual) {
        assertEquals(expected.size(), actual.size());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(i, actual.get(i).index());
            assertArrayEquals(expected.get(i).inputIds(), actual.get(i).inputIds(), "example " + i);
            assertArrayEquals(expected.get(i).labels(), actual.get(i).labels(), "example " + i);
            assertEquals(expected.get(i).images().size(), actual.get(i).images().size(), "example " + i);
            for (int k = 0; k < expected.get(i).images().size(); k++) {
                TokenizedExample.Image a = expected.get(i).images().get(k);
                TokenizedExample.Image b = actual.get(i).images().get(k);
                assertEquals(List.of(a.gridT(), a.gridH(), a.gridW()), List.of(b.gridT(), b.gridH(), b.gridW()));
                assertEquals(a.path(), localPath(b.path()), "example " + i + " image " + k);
            }
        }
    }

    @Test
    void sparkGivesTheLocalReadersExamplesWithTheirImages(@TempDir Path dir) throws Exception {
        Path[] f = fixture(dir);
        ObjectNode v = values(f[0].toString(), f[1]);
        List<TokenizedExample> local = local(v, f[1]);
        List<TokenizedExample> spark = spark(v);
        assertSame(local, spark);
        assertEquals(f[0].resolve("mllm_demo_data/1.jpg").toUri().toString(),
                spark.get(0).images().get(0).path(), "Spark's examples carry resolved URIs");
        assertEquals(66 * 2, java.util.Arrays.stream(spark.get(0).inputIds()).filter(id -> id == 151655).count());
    }

    @Test
    void imagesOnAnotherHadoopFileSystemAreReadThroughIt(@TempDir Path dir) throws Exception {
        Path[] f = fixture(dir);
        List<TokenizedExample> local = local(values(f[0].toString(), f[1]), f[1]);
        List<TokenizedExample> spark = spark(values("testfs://" + f[0], f[1]));
        assertSame(local, spark);
        assertTrue(spark.get(1).images().get(0).path().startsWith("testfs:"), spark.get(1).images().get(0).path());
    }

    @Test
    void aMissingImageFailsTheRunNamingTheRowAndPath(@TempDir Path dir) throws Exception {
        Path[] f = fixture(dir);
        Files.delete(f[0].resolve("mllm_demo_data/2.jpg"));
        Exception e = assertThrows(Exception.class, () -> spark(values(f[0].toString(), f[1])));
        Throwable user = e;
        while (user != null && !(user instanceof dev.sparksft.UserError)) {
            user = user.getCause();   // an executor's UserError is the cause of the job's SparkException
        }
        assertTrue(user != null && user.getMessage().startsWith("mllm_demo.json [1]: image 'mllm_demo_data/2.jpg' "
                + "does not exist: neither file:"), String.valueOf(user == null ? e : user.getMessage()));
        assertEquals(user, Failures.userError(e), "SparkSftMain reports it as the user's mistake (exit 2)");
        assertEquals(null, Failures.userError(new RuntimeException("spark-sft rank 1 of 2 failed at step 3: x",
                new dev.sparksft.UserError("y"))), "a rank's own report stays the rank's");
    }
}
