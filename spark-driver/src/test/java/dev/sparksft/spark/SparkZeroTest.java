package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.train.Checkpoints;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code deepspeed: <a ZeRO-2 or ZeRO-3 file>} through Spark (2 barrier ranks): the JSON path
 * travels in the configuration and every rank reads it (local mode shares the disk); the run
 * equals the single-process one on the same global batch, checkpoint included (at stage 3 rank 0
 * gathers the whole model for the checkpoint and the final save).
 */
class SparkZeroTest {
    /** LLaMA-Factory's ds_z2_config.json. */
    static final String DS_Z2 = """
            {
              "train_batch_size": "auto",
              "train_micro_batch_size_per_gpu": "auto",
              "gradient_accumulation_steps": "auto",
              "gradient_clipping": "auto",
              "zero_allow_untested_optimizer": true,
              "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
                       "hysteresis": 2, "min_loss_scale": 1},
              "bf16": {"enabled": "auto"},
              "zero_optimization": {"stage": 2, "allgather_partitions": true, "allgather_bucket_size": 5e8,
                                    "overlap_comm": false, "reduce_scatter": true, "reduce_bucket_size": 5e8,
                                    "contiguous_gradients": true, "round_robin_gradients": true}
            }
            """;
    /** LLaMA-Factory's ds_z3_config.json. */
    static final String DS_Z3 = """
            {
              "train_batch_size": "auto",
              "train_micro_batch_size_per_gpu": "auto",
              "gradient_accumulation_steps": "auto",
              "gradient_clipping": "auto",
              "zero_allow_untested_optimizer": true,
              "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
                       "hysteresis": 2, "min_loss_scale": 1},
              "bf16": {"enabled": "auto"},
              "zero_optimization": {"stage": 3, "overlap_comm": false, "contiguous_gradients": true,
                                    "sub_group_size": 1e9, "reduce_bucket_size": "auto",
                                    "stage3_prefetch_bucket_size": "auto",
                                    "stage3_param_persistence_threshold": "auto",
                                    "stage3_max_live_parameters": 1e9, "stage3_max_reuse_distance": 1e9,
                                    "stage3_gather_16bit_weights_on_model_save": true}
            }
            """;
    static final String ADAMW = "per_device_train_batch_size: 1\nlearning_rate: 1.0e-3\nlr_scheduler_type: cosine\n"
            + "warmup_steps: 1\nweight_decay: 0.1\nnum_train_epochs: 2\nmax_grad_norm: 1.0\nsave_steps: 3\n";

    @Test
    void zeroTwoThroughSparkTrainsLikeOneProcess(@TempDir Path dir) throws Exception {
        trainsLikeOneProcess(dir, "ZeRO-2", DS_Z2);
    }

    @Test
    void zeroThreeThroughSparkTrainsLikeOneProcess(@TempDir Path dir) throws Exception {
        trainsLikeOneProcess(dir, "ZeRO-3", DS_Z3);
    }

    /** Two barrier ranks with the DeepSpeed file {@code json} against one process on the same global batch. */
    static void trainsLikeOneProcess(Path dir, String what, String json) throws Exception {
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, ADAMW + "gradient_accumulation_steps: 4\n")));
        Path ds = Files.writeString(dir.resolve("ds_config.json"), json);
        Path run = Files.createDirectories(dir.resolve("zero"));
        List<String> ranks = TrainingJob.run(SparkTests.spark(), SparkTests.values(run, ADAMW + "deepspeed: " + ds + "\n",
                "world_size=2", "gradient_accumulation_steps=2"), new PrintStream(new ByteArrayOutputStream(), true));
        assertEquals(2, ranks.size());
        List<Double> reference = DistributedTrainingTest.losses(single.resolve("out"));
        List<Double> got = DistributedTrainingTest.losses(run.resolve("out"));
        assertEquals(reference.size(), got.size());
        double lossDiff = 0;
        for (int i = 0; i < got.size(); i++) {
            lossDiff = Math.max(lossDiff, Math.abs(reference.get(i) - got.get(i)));
            assertEquals(reference.get(i), got.get(i), 1e-5, what + " step " + (i + 1) + " loss");
        }
        double rel = DistributedTrainingTest.relativeDifference(DistributedTrainingTest.weights(single.resolve("out")),
                DistributedTrainingTest.weights(run.resolve("out")), DistributedTrainingTest.weights(
                        SparkTests.root().resolve("model")));
        System.out.printf("Spark %s x2: max |loss diff| %.2e, weights differ by %.2e of the update%n", what, lossDiff, rel);
        assertTrue(rel < 1e-4, what + " through Spark: weights differ by " + rel + " of the update");
        assertTrue(Files.isRegularFile(run.resolve("out/checkpoint-3").resolve(Checkpoints.OPTIMIZER_FILE)),
                "rank 0 writes the gathered optimizer state");
    }

    @Test
    void aDeepSpeedFileARankCannotReadFailsNamingThePath(@TempDir Path dir) throws Exception {
        Path run = Files.createDirectories(dir.resolve("zero"));
        Path missing = dir.resolve("not-on-this-executor/ds_z2_config.json");
        Exception e = assertThrows(Exception.class, () -> TrainingJob.run(SparkTests.spark(),
                SparkTests.values(run, ADAMW + "deepspeed: " + missing + "\n", "world_size=2"),
                new PrintStream(new ByteArrayOutputStream(), true)));
        String message = String.valueOf(e.getMessage());
        assertTrue(message.contains(missing + " does not exist") && message.contains("every executor sees"), message);
    }
}
