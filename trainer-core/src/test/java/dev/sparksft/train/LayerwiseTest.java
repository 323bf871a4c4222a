package dev.sparksft.train;

import static dev.sparksft.train.ModelComparison.floats;
import static dev.sparksft.train.ModelComparison.relativeDifference;
import static dev.sparksft.train.ModelComparison.weights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Batch;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.optim.LayerwiseOptimizer;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.MemoryEstimate;
import dev.sparksft.run.RunChecks;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Layer-wise GaLore and APOLLO (galore_layerwise, apollo_layerwise): the same weights, losses and
 * gradient norms as the plain optimizer with clipping off, with and without activation
 * checkpointing; max_grad_norm changes nothing; resuming is exact; and LLaMA-Factory's refusals.
 */
class LayerwiseTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path llama;
    static Path qwen;
    static Path data;

    @BeforeAll
    static void tinyModelsAndData() throws Exception {
        Torch.load(1);
        llama = shared.resolve("llama");   // separate embedding and LM head
        TinyModel.write(new TinyModel.Options("llama", llama, 0, 32, 3, 4, 2, 64, null, 0, 0));
        qwen = shared.resolve("qwen2");    // tied embedding (read by the head too), q/k/v biases
        TinyModel.write(new TinyModel.Options("qwen2", qwen, 0, 32, 3, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 40, 5, 1);
    }

    /**
     * Several steps of each optimizer on the same data, with projections refreshed every 2 steps,
     * a cosine schedule and weight decay; clipping off in the plain run.
     */
    static SftConfig config(Path dir, Path model, String extra, String... overrides) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model + "\ntemplate: chatml\n"
                + "dataset: train.jsonl\ndataset_dir: " + data + "\ncutoff_len: 64\nstage: sft\ndo_train: true\n"
                + "finetuning_type: full\noutput_dir: " + dir.resolve("out") + "\nlogging_steps: 1\nsave_strategy: \"no\"\n"
                + "num_threads: 1\nper_device_train_batch_size: 4\nmax_steps: 5\nlearning_rate: 1.0e-2\n"
                + "lr_scheduler_type: cosine\nwarmup_steps: 1\nweight_decay: 0.1\nmax_grad_norm: 0\n", extra));
        return SftConfig.load(f, List.of(overrides));
    }

    static final String GALORE = "use_galore: true\ngalore_rank: 8\ngalore_update_interval: 2\ngalore_scale: 1\n";
    static final String APOLLO = "use_apollo: true\napollo_rank: 8\napollo_update_interval: 2\n";

    /** trainer_state.json's log_history: (loss, grad_norm) of every step, at full precision. */
    static List<double[]> history(Path out) throws Exception {
        List<double[]> rows = new ArrayList<>();
        for (JsonNode n : JSON.readTree(out.resolve("trainer_state.json").toFile()).get("log_history")) {
            if (n.has("loss")) {
                rows.add(new double[] {n.get("loss").asDouble(), n.get("grad_norm").asDouble()});
            }
        }
        return rows;
    }

    /** max |a - b| over every weight of two saved models. */
    static double maxDifference(Path a, Path b) throws Exception {
        Map<String, Tensor> x = weights(a);
        Map<String, Tensor> y = weights(b);
        assertEquals(x.keySet(), y.keySet());
        double diff = 0;
        for (String name : x.keySet()) {
            float[] u = floats(x.get(name));
            float[] v = floats(y.get(name));
            for (int i = 0; i < u.length; i++) {
                diff = Math.max(diff, Math.abs(u[i] - v[i]));
            }
        }
        return diff;
    }

    /**
     * Stepping a tensor as soon as its gradient is complete is the plain step's arithmetic on the
     * same gradients (a layer's update is made after the gradient passed below it was computed),
     * so the weights and losses are bit-identical (tolerance 0). grad_norm sums the same tensor
     * norms in another order (head, layers top down, embedding), so it may differ in the last
     * bits: 1e-9 relative.
     */
    @ParameterizedTest(name = "{0} on {1}, checkpointing {2}")
    @CsvSource({"galore, llama, true", "galore, llama, false", "apollo, llama, true", "apollo, llama, false",
            "galore, qwen2, true", "apollo, qwen2, false"})
    void layerwiseEqualsThePlainOptimizerWithClippingOff(String method, String arch, boolean checkpointing,
                                                          @TempDir Path plain, @TempDir Path layerwise) throws Exception {
        Path model = arch.equals("llama") ? llama : qwen;
        String common = (method.equals("galore") ? GALORE : APOLLO)
                + "disable_gradient_checkpointing: " + !checkpointing + "\n";
        TrainCommand.run(config(plain, model, common));
        TrainCommand.run(config(layerwise, model, common + method + "_layerwise: true\n"));
        Path a = plain.resolve("out");
        Path b = layerwise.resolve("out");
        relativeDifference(weights(a), weights(b), weights(model), 1e-3);   // both runs moved the weights
        assertEquals(0.0, maxDifference(a, b), "the layer-wise weights differ from the plain optimizer's");
        List<double[]> x = history(a);
        List<double[]> y = history(b);
        assertEquals(5, x.size());
        assertEquals(x.size(), y.size());
        for (int i = 0; i < x.size(); i++) {
            assertEquals(x.get(i)[0], y.get(i)[0], 0.0, "loss of step " + (i + 1));
            assertTrue(y.get(i)[1] > 0, "the layer-wise grad_norm is the real norm, not LLaMA-Factory's zeros");
            assertEquals(x.get(i)[1], y.get(i)[1], 1e-9 * x.get(i)[1], "grad_norm of step " + (i + 1));
        }
    }

    /**
     * Gradients are freed as they are applied: with activation checkpointing at most one group's
     * exist at once (the final norm and LM head, one decoder layer, the embedding; a tied embedding's
     * stays from the head's backward to its own), without it all of them; none is left after the step.
     */
    @ParameterizedTest(name = "{0}, checkpointing {1}")
    @CsvSource({"llama, true", "llama, false", "qwen2, true", "qwen2, false"})
    void gradientsExistOneGroupAtATime(String arch, boolean checkpointing, @TempDir Path dir) throws Exception {
        Path model = arch.equals("llama") ? llama : qwen;
        SftConfig config = config(dir, model, GALORE + "galore_layerwise: true\ndisable_gradient_checkpointing: "
                + !checkpointing + "\n");
        try (PointerScope scope = new PointerScope()) {
            CausalLm m = Models.forTraining(config, model, null, null, 0, new Device(torch.DeviceType.CPU));
            TrainingSetup setup = TrainingSetup.of(config.training(), config.finetuning(), m, 8, World.single(),
                    checkpointing);
            LayerwiseOptimizer optimizer = (LayerwiseOptimizer) setup.optimizer();
            Batch b = ActivationCheckpointingTest.batch(false, 11, m.config().vocabSize());
            long n = java.util.Arrays.stream(ActivationCheckpointingTest.labelsOf(b)).sum();
            if (checkpointing) {
                ActivationCheckpointing.forwardBackward(m, b, setup.loss(), n, false, setup.sharding(), optimizer, 1e-3);
            } else {
                Trainer.plainForwardBackward(m, b, setup.loss(), n, false);
            }
            optimizer.step(1e-3);
            Map<String, Tensor> trainable = setup.trainable();
            trainable.forEach((name, p) -> assertFalse(p.grad().defined(), name + " keeps its gradient after the step"));
            long all = 0;
            long largestLayer = 0;
            for (int i = 0; i < m.numLayers(); i++) {
                largestLayer = Math.max(largestLayer,
                        setup.sharding().layerTensors(i).stream().mapToLong(t -> trainable.get(t).nbytes()).sum());
            }
            for (Tensor p : trainable.values()) {
                all += p.nbytes();
            }
            long embedding = trainable.get(ModelLayout.EMBEDDING).nbytes();
            long norm = trainable.get(ModelLayout.FINAL_NORM).nbytes();
            long expected = !checkpointing ? all
                    : m.config().tieWordEmbeddings() ? embedding + Math.max(norm, largestLayer)
                    : Math.max(Math.max(norm + trainable.get(ModelLayout.LM_HEAD).nbytes(), largestLayer), embedding);
            assertEquals(expected, optimizer.peakGradientBytes(), "peak gradient bytes (all of them: " + all + ")");
            assertEquals(expected, MemoryEstimate.of(config, m.config()).gradients(), "scripts/sft estimate's gradients");
            if (checkpointing) {
                assertTrue(expected < all / 2, expected + " of " + all);
            }
        }
    }

    /**
     * max_grad_norm has no effect in layer-wise mode (as in LLaMA-Factory, whose clip finds no
     * gradient left): a clip of 0.01, which does change the plain run, leaves the layer-wise
     * weights as they are without one.
     */
    @Test
    void maxGradNormHasNoEffectLayerwise(@TempDir Path noClip, @TempDir Path clip, @TempDir Path plainClip)
            throws Exception {
        TrainCommand.run(config(noClip, llama, GALORE + "galore_layerwise: true\n"));
        TrainCommand.run(config(clip, llama, GALORE + "galore_layerwise: true\nmax_grad_norm: 0.01\n"));
        TrainCommand.run(config(plainClip, llama, GALORE + "max_grad_norm: 0.01\n"));
        assertEquals(0.0, maxDifference(noClip.resolve("out"), clip.resolve("out")));
        assertTrue(maxDifference(noClip.resolve("out"), plainClip.resolve("out")) > 1e-4,
                "a clip of 0.01 must change the plain run, or this test shows nothing");
    }

    /** The per-tensor state (moments, projections, APOLLO's limiter norms) is checkpointed: resuming is exact. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"galore", "apollo"})
    void resumingLayerwiseEqualsTheUninterruptedRun(String method, @TempDir Path full, @TempDir Path resumed)
            throws Exception {
        String common = (method.equals("galore") ? GALORE : APOLLO) + method + "_layerwise: true\nmax_steps: 6\n"
                + "save_strategy: steps\nsave_steps: 3\n";
        TrainCommand.run(config(full, llama, common));
        TrainCommand.run(config(resumed, llama, common, "resume_from_checkpoint=" + full.resolve("out/checkpoint-3")));
        relativeDifference(weights(full.resolve("out")), weights(resumed.resolve("out")), weights(llama), 1e-3);
        assertEquals(0.0, maxDifference(full.resolve("out"), resumed.resolve("out")), "the resumed run differs");
    }

    @Test
    void gradientAccumulationWorldSizeAndDeepSpeedAreRefusedTogether(@TempDir Path dir) {
        var e = assertThrows(UserError.class, () -> config(dir, llama, GALORE + "galore_layerwise: true\n"
                + "gradient_accumulation_steps: 2\nworld_size: 2\ndeepspeed: ds_z2_config.json\n"));
        String m = e.getMessage();
        assertTrue(m.contains("gradient_accumulation_steps: 2 with galore_layerwise: true: Per-layer GaLore does not "
                + "support gradient accumulation") && m.contains("set gradient_accumulation_steps: 1"), m);
        assertTrue(m.contains("world_size: 2 with galore_layerwise: true: Distributed training does not support "
                + "layer-wise GaLore") && m.contains("set world_size: 1"), m);
        assertTrue(m.contains("deepspeed: ds_z2_config.json with galore_layerwise: true: GaLore and APOLLO are "
                + "incompatible with DeepSpeed yet") && m.contains("remove deepspeed"), m);
        assertTrue(m.contains("or set galore_layerwise: false"), m);
    }

    @Test
    void eachRefusalNamesItsKeyForApolloToo(@TempDir Path dir) {
        var e = assertThrows(UserError.class, () -> config(dir, llama, APOLLO + "apollo_layerwise: true\n"
                + "gradient_accumulation_steps: 4\n"));
        assertTrue(e.getMessage().contains("gradient_accumulation_steps: 4 with apollo_layerwise: true: Per-layer "
                + "APOLLO does not support gradient accumulation"), e.getMessage());
        assertFalse(e.getMessage().contains("world_size"), e.getMessage());
        e = assertThrows(UserError.class, () -> config(dir, llama, APOLLO + "apollo_layerwise: true\nworld_size: 3\n"));
        assertTrue(e.getMessage().contains("world_size: 3 with apollo_layerwise: true: Distributed training does not "
                + "support layer-wise APOLLO"), e.getMessage());
    }

    /** The Spark job is distributed training (barrier tasks, collectives) even at world_size 1, as torchrun is. */
    @Test
    void theSparkJobRefusesLayerwise(@TempDir Path dir) throws Exception {
        SftConfig config = config(dir, llama, APOLLO + "apollo_layerwise: true\n");
        var e = assertThrows(UserError.class, () -> RunChecks.sparkJob(config));
        assertTrue(e.getMessage().startsWith("apollo_layerwise: true: Distributed training does not support layer-wise "
                + "APOLLO") && e.getMessage().contains("scripts/sft train"), e.getMessage());
        RunChecks.sparkJob(config(dir, llama, APOLLO));   // the plain optimizer runs there
    }

    /** As in LLaMA-Factory, galore_layerwise without use_galore asks for nothing. */
    @Test
    void layerwiseWithoutItsOptimizerDoesNothing(@TempDir Path dir) throws Exception {
        assertFalse(config(dir, llama, "galore_layerwise: true\napollo_layerwise: true\n").finetuning().layerwise());
        assertTrue(config(dir, llama, APOLLO + "apollo_layerwise: true\n").finetuning().layerwise());
    }
}
