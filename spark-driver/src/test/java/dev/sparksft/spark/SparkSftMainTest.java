package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The exit codes and the one line a scheduler sees: 0 done, 2 bad configuration or data, 1 a failed run. */
class SparkSftMainTest {
    record Outcome(int code, String stderr, String stdout) {}

    static Outcome main(String... args) {
        PrintStream err = System.err;
        PrintStream out = System.out;
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        try {
            return new Outcome(SparkSftMain.run(args), e.toString(StandardCharsets.UTF_8), o.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(err);
            System.setOut(out);
        }
    }

    static Path config(Path dir, String extra) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra(SparkTests.baseYaml(dir.resolve("out")), extra));
        return f;
    }

    @Test
    void badConfigurationExitsWithTwoAndSaysWhichKey(@TempDir Path dir) throws Exception {
        Outcome o = main(config(dir, "learning_rat: 0.1\n").toString());
        assertEquals(2, o.code());
        assertTrue(o.stderr().contains("learning_rat: unknown key") && o.stderr().contains("learning_rate"), o.stderr());
        assertEquals(2, main(dir.resolve("missing.yaml").toString()).code());
        assertEquals(2, main().code());
        // fp8 on CPU ranks is refused on the driver, before any Spark task
        o = main(config(dir, "fp8: true\n").toString());
        assertEquals(2, o.code());
        assertTrue(o.stderr().contains("fp8: true needs a CUDA GPU with compute capability >= 8.9"), o.stderr());
        // a GPU run whose estimate cannot fit the GPUs is refused on the driver, naming the largest part and a fix
        o = main(config(dir, "device: cuda\ndevice_memory_gb: 0.001\n").toString());
        assertEquals(2, o.code(), o.stderr());
        assertTrue(o.stderr().contains("per rank but device_memory_gb is 0.0") && o.stderr().contains("the largest part is"),
                o.stderr());
    }

    @Test
    void aRunThatFailsExitsWithOneAndOneLineNamingTheRank(@TempDir Path dir) throws Exception {
        Outcome o = main(config(dir, "max_steps: 2\nper_device_train_batch_size: 1\n").toString(), "device=cuda");
        assertEquals(1, o.code(), o.stderr());
        String last = o.stderr().lines().filter(l -> l.startsWith("spark-sft:")).reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith("spark-sft: training failed: spark-sft rank 0 of 1 failed")
                && last.contains("this libtorch has no CUDA device"), o.stderr());
    }

    @Test
    void aFinishedRunTrainsEvaluatesWithGenerationAndPredicts(@TempDir Path dir) throws Exception {
        Outcome o = main(config(dir, "max_steps: 2\nper_device_train_batch_size: 2\ndo_eval: true\ndo_predict: true\n"
                + "predict_with_generate: true\neval_dataset: mixed.jsonl\ndo_sample: false\nmax_new_tokens: 3\n").toString());
        assertEquals(0, o.code(), o.stderr());
        assertTrue(o.stdout().contains("[spark-sft] training finished"), o.stdout());
        assertTrue(Files.isRegularFile(dir.resolve("out/model.safetensors")));
        assertEquals(11, Files.readAllLines(dir.resolve("out/generated_predictions.jsonl")).size());
        var eval = SparkTests.JSON.readTree(dir.resolve("out/eval_results.json").toFile());
        assertTrue(eval.has("eval_loss") && eval.has("eval_bleu-4") && eval.has("eval_rouge-l"), eval.toString());
        var all = SparkTests.JSON.readTree(dir.resolve("out/all_results.json").toFile());
        assertTrue(all.has("train_loss") && all.has("eval_rouge-1") && all.has("predict_bleu-4"), all.toString());
    }
}
