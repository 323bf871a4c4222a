package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.train.ModelComparison;
import java.io.PrintStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * docs/ARCHITECTURE.md invariants 1-3 through Spark: the same global batch split as (world_size,
 * grad_accum) = (1,4), (2,2), (4,1) gives the same per-step losses and final weights as the
 * single-process trainer, with examples of 1..120 letters and a last partial step. SGD keeps
 * the comparison exact up to float summation order (weights 1.2e-7 of the update here); AdamW
 * divides each gradient by its running RMS, which turns summation-order noise in near-zero
 * gradients into visible update differences (3.9e-5 of the update), so it is held to 1e-4.
 */
class DistributedTrainingTest {
    static final String COMMON = "optim: sgd\nper_device_train_batch_size: 1\nlearning_rate: 0.1\nlr_scheduler_type: cosine\n"
            + "warmup_steps: 1\nweight_decay: 0.1\nnum_train_epochs: 2\nmax_grad_norm: 0\n";

    @Test
    void worldSizeAndAccumulationSplitsGiveTheSameTraining(@TempDir Path dir) throws Exception {
        Path single = dir.resolve("single");
        Files.createDirectories(single);
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, COMMON + "gradient_accumulation_steps: 4\n")));
        List<Double> reference = losses(single.resolve("out"));
        assertEquals(6, reference.size(), "11 examples, global batch 4, 2 epochs: 3 steps per epoch, the last partial");
        Map<String, Tensor> initial = weights(SparkTests.root().resolve("model"));
        Map<String, Tensor> expected = weights(single.resolve("out"));

        for (int[] split : new int[][] {{1, 4}, {2, 2}, {4, 1}}) {
            Path run = dir.resolve("w" + split[0] + "ga" + split[1]);
            Files.createDirectories(run);
            ByteArrayOutputStream progress = new ByteArrayOutputStream();
            List<String> ranks = TrainingJob.run(SparkTests.spark(), SparkTests.values(run, COMMON,
                    "world_size=" + split[0], "gradient_accumulation_steps=" + split[1]), new PrintStream(progress, true));
            assertEquals(split[0], ranks.size());
            List<Double> got = losses(run.resolve("out"));
            assertEquals(reference.size(), got.size());
            for (int i = 0; i < got.size(); i++) {
                assertEquals(reference.get(i), got.get(i), 1e-5 * reference.get(i),
                        "step " + (i + 1) + " loss with world_size " + split[0] + ", grad_accum " + split[1]);
            }
            double rel = relativeDifference(expected, weights(run.resolve("out")), initial);
            assertTrue(rel < 1e-5, "world_size " + split[0] + " x grad_accum " + split[1] + ": weights differ by " + rel
                    + " of the update");
            assertTrue(progress.toString().contains("[spark-sft] step 6/6"), progress.toString());
        }
    }

    @Test
    void adamWGivesTheSameLossesAcrossSplits(@TempDir Path dir) throws Exception {
        // clipping on here: every rank clips the same all-reduced gradient
        String adamw = COMMON.replace("optim: sgd\n", "").replace("learning_rate: 0.1", "learning_rate: 1.0e-3")
                .replace("max_grad_norm: 0", "max_grad_norm: 1.0");
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, adamw + "gradient_accumulation_steps: 4\n")));
        Path run = Files.createDirectories(dir.resolve("w2ga2"));
        TrainingJob.run(SparkTests.spark(), SparkTests.values(run, adamw, "world_size=2", "gradient_accumulation_steps=2"),
                new PrintStream(new ByteArrayOutputStream(), true));
        List<Double> reference = losses(single.resolve("out"));
        List<Double> got = losses(run.resolve("out"));
        for (int i = 0; i < got.size(); i++) {
            assertEquals(reference.get(i), got.get(i), 1e-5 * reference.get(i), "AdamW step " + (i + 1));
        }
        double rel = relativeDifference(weights(single.resolve("out")), weights(run.resolve("out")),
                weights(SparkTests.root().resolve("model")));
        assertTrue(rel < 1e-4, "AdamW weights differ by " + rel + " of the update");
    }

    /**
     * Gemma's forward (sandwich norms, a soft-capped eager attention, sliding windows shorter than
     * the examples, gemma3's model.language_model.* files) trains the same on 2 ranks as in one process.
     */
    @Test
    void aGemma3ModelTrainsTheSameOnTwoRanks(@TempDir Path dir) throws Exception {
        assertFamilyTrainsTheSameOnTwoRanks(dir, "gemma3", 4, 2, Map.of(
                "\"sliding_window\" : 4096", "\"sliding_window\" : 8",
                "\"attn_logit_softcapping\" : null", "\"attn_logit_softcapping\" : 1.0"));
    }

    /**
     * Phi-3's fused qkv_proj / gate_up_proj (sliced per step), partial rotary, longrope with the
     * long factors in use (original_max_position_embeddings 4, shorter than the examples) and a
     * sliding window train the same on 2 ranks as in one process.
     */
    @Test
    void aPhi3ModelTrainsTheSameOnTwoRanks(@TempDir Path dir) throws Exception {
        assertFamilyTrainsTheSameOnTwoRanks(dir, "phi3", 2, 1, Map.of(
                "\"sliding_window\" : null", "\"sliding_window\" : 8",
                "\"original_max_position_embeddings\" : 4096", "\"original_max_position_embeddings\" : 4",
                "\"partial_rotary_factor\" : 1.0", "\"partial_rotary_factor\" : 0.5",
                "\"rope_scaling\" : null", "\"rope_scaling\" : {\"type\": \"longrope\", "
                        + "\"short_factor\": [1.0, 1.2, 1.5, 2.0], \"long_factor\": [1.0, 2.0, 4.0, 8.0]}"));
    }

    /**
     * The other new families as make-tiny-model writes them: Gemma 2's and Gemma 3's text blocks,
     * and the mixtures of experts (mixtral: 4 experts, top-2, every layer sparse; qwen3_moe with
     * q/k norms), whose routing is per token, so a rank's micro-batch routes as in the one
     * process's accumulation step.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "gemma3_text", "mixtral", "qwen3_moe"})
    void aModelOfEachFamilyTrainsTheSameOnTwoRanks(String arch, @TempDir Path dir) throws Exception {
        assertFamilyTrainsTheSameOnTwoRanks(dir, arch, 4, 2, Map.of());
    }

    /**
     * A tiny {@code arch} model (hidden 32, 2 layers, {@code heads} / {@code kvHeads}) with each
     * {@code edits} key of its config.json replaced by its value (every key must be there), trained
     * by SGD one epoch in one process (accumulation 2) and by Spark on 2 ranks: equal losses and
     * weights.
     */
    private static void assertFamilyTrainsTheSameOnTwoRanks(Path dir, String arch, int heads, int kvHeads,
                                                            Map<String, String> edits) throws Exception {
        Path model = dir.resolve(arch);
        dev.sparksft.model.TinyModel.write(new dev.sparksft.model.TinyModel.Options(arch, model, 3, 32, 2, heads, kvHeads,
                64, null, 0, 0));
        Path config = model.resolve("config.json");
        String json = Files.readString(config);
        for (Map.Entry<String, String> e : edits.entrySet()) {
            assertTrue(json.contains(e.getKey()), arch + " config.json has no " + e.getKey());
            json = json.replace(e.getKey(), e.getValue());
        }
        Files.writeString(config, json);
        String sgd = COMMON.replace("num_train_epochs: 2", "num_train_epochs: 1");
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(SparkTests.values(single, sgd + "gradient_accumulation_steps: 2\n",
                "model_name_or_path=" + model, "per_device_train_batch_size=2")));
        Path run = Files.createDirectories(dir.resolve("w2"));
        TrainingJob.run(SparkTests.spark(), SparkTests.values(run, sgd, "model_name_or_path=" + model, "world_size=2",
                "gradient_accumulation_steps=1", "per_device_train_batch_size=2"), new PrintStream(new ByteArrayOutputStream(), true));
        List<Double> reference = losses(single.resolve("out"));
        List<Double> got = losses(run.resolve("out"));
        assertEquals(3, reference.size(), "11 examples, global batch 4: 3 steps");
        assertEquals(reference.size(), got.size());
        for (int i = 0; i < got.size(); i++) {
            assertEquals(reference.get(i), got.get(i), 1e-5 * reference.get(i), arch + " step " + (i + 1));
        }
        double rel = relativeDifference(weights(single.resolve("out")), weights(run.resolve("out")), weights(model));
        assertTrue(rel < 1e-5, arch + " weights differ by " + rel + " of the update");
    }

    static Map<String, Tensor> weights(Path dir) throws Exception {
        return ModelComparison.weights(dir);
    }

    /** The size of the difference relative to the updates (see {@link ModelComparison#relativeDifference}). */
    static double relativeDifference(Map<String, Tensor> a, Map<String, Tensor> b, Map<String, Tensor> initial) {
        return ModelComparison.relativeDifference(a, b, initial, 1e-4);
    }

    static List<Double> losses(Path out) throws Exception {
        JsonNode state = SparkTests.JSON.readTree(out.resolve("trainer_state.json").toFile());
        List<Double> losses = new ArrayList<>();
        state.get("log_history").forEach(h -> {
            if (h.has("loss")) {
                losses.add(h.get("loss").asDouble());
            }
        });
        return losses;
    }



}
