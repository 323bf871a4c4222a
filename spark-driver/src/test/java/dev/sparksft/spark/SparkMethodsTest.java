package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.generate.Predictor;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.Safetensors;
import dev.sparksft.train.ModelComparison;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA with neat packing through Spark (2 barrier ranks; packs formed on the driver from lengths,
 * concatenated on executors), against the single-process run on the same global batch, and the
 * Spark predict stage reading the LoRA output_dir (base model + adapter).
 */
class SparkMethodsTest {
    static final String LORA = "finetuning_type: lora\nlora_rank: 4\nneat_packing: true\nper_device_train_batch_size: 1\n"
            + "learning_rate: 1.0e-2\nnum_train_epochs: 2\neval_dataset: mixed.jsonl\ndo_predict: true\n"
            + "predict_with_generate: true\ndo_sample: false\nmax_new_tokens: 5\nper_device_eval_batch_size: 2\n";

    static Map<String, Tensor> adapter(Path dir) throws Exception {
        var header = Safetensors.readHeader(dir.resolve(LoraAdapter.WEIGHTS_FILE));
        Map<String, Tensor> out = new TreeMap<>();
        for (var e : header.entries().values()) {
            out.put(e.name(), Safetensors.readTensor(header, e));
        }
        return out;
    }

    @org.junit.jupiter.api.AfterEach
    void clearHooks() {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, null);
    }

    static double maxDifference(Map<String, Tensor> a, Map<String, Tensor> b) {
        assertEquals(a.keySet(), b.keySet());
        double diff = 0;
        for (String k : a.keySet()) {
            float[] x = ModelComparison.floats(a.get(k));
            float[] y = ModelComparison.floats(b.get(k));
            for (int i = 0; i < x.length; i++) {
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
            }
        }
        return diff;
    }

    /** A LoRA+ run whose rank 1 fails at step 3 is retried by Spark from the adapter in checkpoint-2. */
    @Test
    void aFailedLoraRunResumesFromItsAdapterCheckpoint(@TempDir Path dir) throws Exception {
        String lora = FaultToleranceTest.COMMON + "finetuning_type: lora\nlora_rank: 4\nloraplus_lr_ratio: 4\n";
        Path plain = Files.createDirectories(dir.resolve("plain"));
        FaultToleranceTest.train(plain, lora.substring(FaultToleranceTest.COMMON.length()));
        Path faulty = Files.createDirectories(dir.resolve("faulty"));
        Path marker = dir.resolve("failed-once");
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, "1:3:" + marker);
        List<String> ranks = FaultToleranceTest.train(faulty, lora.substring(FaultToleranceTest.COMMON.length()));
        assertTrue(Files.exists(marker), "rank 1 must have failed once");
        assertTrue(SparkTests.JSON.readTree(ranks.get(0)).get("resumed_from").asText().endsWith("checkpoint-2"),
                ranks.get(0));
        assertTrue(Files.isRegularFile(faulty.resolve("out/checkpoint-2").resolve(LoraAdapter.WEIGHTS_FILE)));
        double diff = maxDifference(adapter(plain.resolve("out")), adapter(faulty.resolve("out")));
        assertTrue(diff < 1e-6, "the retried LoRA run's adapter differs by " + diff);
    }

    @Test
    void loraWithNeatPackingTrainsAndPredictsLikeOneProcess(@TempDir Path dir) throws Exception {
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, LORA + "gradient_accumulation_steps: 2\n")));
        List<Double> reference = DistributedTrainingTest.losses(single.resolve("out"));
        // 11 examples of 1..120 letters packed into at most 256 tokens: fewer, longer sequences
        assertTrue(reference.size() < 6, "packing must reduce the steps of 2 epochs at global batch 2: " + reference);

        Path run = Files.createDirectories(dir.resolve("spark"));
        var values = SparkTests.values(run, LORA, "world_size=2", "gradient_accumulation_steps=1");
        TrainingJob.run(SparkTests.spark(), values, new PrintStream(new ByteArrayOutputStream(), true));
        Path out = run.resolve("out");
        List<Double> got = DistributedTrainingTest.losses(out);
        assertEquals(reference.size(), got.size());
        for (int i = 0; i < got.size(); i++) {
            assertEquals(reference.get(i), got.get(i), 1e-5 * reference.get(i), "step " + (i + 1));
        }
        assertTrue(Files.isRegularFile(out.resolve(LoraAdapter.CONFIG_FILE)));
        assertFalse(Files.exists(out.resolve(ModelWeights.SINGLE_FILE)), "a LoRA run saves the adapter only");
        double diff = maxDifference(adapter(single.resolve("out")), adapter(out));
        assertTrue(diff < 1e-5, "adapter weights differ by " + diff);

        // the predict stage loads model_name_or_path + the adapter in output_dir
        PredictionJob.run(SparkTests.spark(), values, out.toString());
        assertEquals(Files.readAllLines(single.resolve("out/" + Predictor.PREDICTIONS_FILE), StandardCharsets.UTF_8),
                Files.readAllLines(out.resolve(Predictor.PREDICTIONS_FILE), StandardCharsets.UTF_8));
    }
}
