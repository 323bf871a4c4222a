package dev.sparksft.train;

import static dev.sparksft.train.ModelComparison.floats;
import static dev.sparksft.train.ModelComparison.relativeDifference;
import static dev.sparksft.train.ModelComparison.weights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.model.TinyModel;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.runtime.Torch;
import java.io.BufferedWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The trainer end to end on a tiny model: exactness under accumulation, exact resume, outputs, errors. */
class TrainerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 3, 32, 2, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        Files.createDirectories(data);
        // 7 examples of very different lengths (1..120 letters): with a global batch of 4 the
        // second step is partial and its last micro-batch empty
        try (BufferedWriter w = Files.newBufferedWriter(data.resolve("mixed.jsonl"))) {
            int[] lengths = {1, 120, 7, 64, 3, 90, 15};
            for (int i = 0; i < lengths.length; i++) {
                String s = "abcdefghij".repeat(13).substring(0, lengths[i]);
                w.write(JSON.writeValueAsString(Map.of("instruction", "Echo", "input", s, "output", s.substring(0,
                        Math.max(1, s.length() / 2)))) + "\n");
            }
        }
    }

    static String yaml(Path out, String extra) {
        return dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model + "\ntemplate: chatml\ndataset: mixed.jsonl"
                + "\ndataset_dir: " + data + "\ncutoff_len: 256\nstage: sft\ndo_train: true\nfinetuning_type: full\noutput_dir: "
                + out + "\nlogging_steps: 1\nsave_steps: 1000\nnum_threads: 1\n", extra);
    }

    static SftConfig config(Path dir, String extra, String... overrides) throws Exception {
        Path f = dir.resolve("run-" + Math.abs(extra.hashCode()) + "-" + overrides.length + ".yaml");
        Files.writeString(f, yaml(dir.resolve("out"), extra));
        return SftConfig.load(f, List.of(overrides));
    }




    @Test
    void accumulationGivesTheSameLossAndUpdatesAsOneBigBatch(@TempDir Path a, @TempDir Path b) throws Exception {
        String common = "optim: sgd\nlearning_rate: 0.5\nlr_scheduler_type: constant\nmax_grad_norm: 0\n"
                + "disable_shuffling: true\nnum_train_epochs: 1\n";
        var ga = TrainCommand.run(config(a, common + "per_device_train_batch_size: 1\ngradient_accumulation_steps: 4\n"));
        var big = TrainCommand.run(config(b, common + "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n"));
        assertEquals(2, ga.globalStep());
        assertEquals(big.trainLoss(), ga.trainLoss(), 1e-5 * big.trainLoss(), "same exact per-step loss");
        double rel = relativeDifference(weights(a.resolve("out")), weights(b.resolve("out")), weights(model), 1e-3);
        assertTrue(rel < 1e-5, "GA=4 x 1 and GA=1 x 4 differ by " + rel + " of the update");
    }

    @Test
    void resumedRunEndsWithTheSameWeights(@TempDir Path full, @TempDir Path resumed) throws Exception {
        String common = "per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\nlearning_rate: 1.0e-3\n"
                + "max_steps: 10\nsave_steps: 5\nwarmup_steps: 2\nlr_scheduler_type: cosine\nweight_decay: 0.1\n";
        TrainCommand.run(config(full, common));
        Path checkpoint5 = full.resolve("out/checkpoint-5");
        assertTrue(Files.isDirectory(checkpoint5));
        TrainCommand.run(config(resumed, common, "resume_from_checkpoint=" + checkpoint5));
        double rel = relativeDifference(weights(full.resolve("out")), weights(resumed.resolve("out")), weights(model), 1e-3);
        assertTrue(rel < 1e-6, "resumed weights differ by " + rel);
        // and the log continues where the checkpoint left off
        List<String> lines = Files.readAllLines(resumed.resolve("out/trainer_log.jsonl"));
        assertEquals(6, JSON.readTree(lines.get(0)).get("current_steps").asInt());

        // resume_from_checkpoint: true picks the newest checkpoint of output_dir (here the final one)
        var again = TrainCommand.run(config(full, common, "resume_from_checkpoint=true"));
        assertEquals(10, again.globalStep());
        assertTrue(relativeDifference(weights(full.resolve("out")), weights(resumed.resolve("out")), weights(model), 1e-3) < 1e-6);
    }

    @Test
    void writesLlamaFactoryOutputs(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "per_device_train_batch_size: 2\nmax_steps: 4\nsave_steps: 2\nsave_total_limit: 1\n"
                + "plot_loss: true\ndo_eval: true\nval_size: 2\ncompute_accuracy: true\neval_strategy: steps\neval_steps: 2\n"
                + "learning_rate: 1.0e-3\n"));
        Path out = dir.resolve("out");
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "generation_config.json", "trainer_log.jsonl", "trainer_state.json", "train_results.json",
                "eval_results.json", "all_results.json", "training_loss.png")) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertEquals(List.of("checkpoint-4"), Checkpoints.list(out).stream().map(p -> p.getFileName().toString()).toList(),
                "save_total_limit keeps the newest");
        JsonNode firstRow = JSON.readTree(Files.readAllLines(out.resolve("trainer_log.jsonl")).get(0));
        for (String field : List.of("current_steps", "total_steps", "loss", "lr", "epoch", "percentage", "elapsed_time",
                "remaining_time")) {
            assertTrue(firstRow.has(field), field + " in " + firstRow);
        }
        assertTrue(Files.readAllLines(out.resolve("trainer_log.jsonl")).stream().anyMatch(l -> l.contains("eval_accuracy")));
        JsonNode all = JSON.readTree(out.resolve("all_results.json").toFile());
        for (String field : List.of("train_loss", "train_runtime", "train_samples_per_second", "epoch", "eval_loss",
                "eval_accuracy")) {
            assertTrue(all.has(field), field);
        }
        JsonNode state = JSON.readTree(out.resolve("trainer_state.json").toFile());
        assertEquals(4, state.get("global_step").asInt());
        assertTrue(state.get("log_history").size() >= 4);
        // the final model loads with the foundation loader
        assertEquals(ModelConfig.load(model).vocabSize(), ModelConfig.load(out).vocabSize());
        assertEquals(weights(model).keySet(), weights(out).keySet());
    }

    @Test
    void refusesToOverwriteAnotherRun(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "max_steps: 1\n"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainCommand.run(config(dir, "max_steps: 1\n")));
        assertTrue(e.getMessage().contains("already holds another run") && e.getMessage().contains("overwrite_output_dir"),
                e.getMessage());
        TrainCommand.run(config(dir, "max_steps: 1\n", "overwrite_output_dir=true"));
    }

    /** Nothing is lost by starting a run: a run that fails on its data deletes no previous run, and inputs are never outputs. */
    @Test
    void overwriteDeletesNothingBeforeTheDataAndModelAreRead(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "max_steps: 1\n"));
        Path previous = dir.resolve("out").resolve("model.safetensors");
        assertTrue(Files.exists(previous));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainCommand.run(config(dir, "max_steps: 1\n", "overwrite_output_dir=true", "dataset=mixd.jsonl")));
        assertTrue(e.getMessage().contains("mixd.jsonl"), e.getMessage());
        assertTrue(Files.exists(previous), "the previous run's model survives a run that failed on its dataset");
        e = assertThrows(IllegalArgumentException.class, () -> TrainCommand.run(config(dir, "max_steps: 1\n",
                "overwrite_output_dir=true", "output_dir=" + model)));
        assertTrue(e.getMessage().contains("is model_name_or_path") && e.getMessage().contains("choose another output_dir"),
                e.getMessage());
        assertTrue(Files.exists(model.resolve("model.safetensors")), "the input model is untouched");
    }

    /** cutoff_len that cuts every response away is refused instead of training "loss 0.0000". */
    @Test
    void aTrainingSetWithoutLabelledTokensIsRefused(@TempDir Path dir) throws Exception {
        Path data2 = Files.createDirectories(dir.resolve("data"));
        Files.writeString(data2.resolve("long-prompts.jsonl"), JSON.writeValueAsString(Map.of("instruction",
                "abcdefghij".repeat(10), "input", "", "output", "a")) + "\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TrainCommand.run(config(dir,
                "max_steps: 1\n", "dataset=long-prompts.jsonl", "dataset_dir=" + data2, "cutoff_len=4")));
        assertTrue(e.getMessage().contains("no labelled token is left in the training set after cutoff_len 4"),
                e.getMessage());
    }

    /** The final model appears whole (temporary folder, then renamed); what a killed run left behind is removed. */
    @Test
    void theFinalSaveLeavesNoTemporaryAndStaleOnesAreRemoved(@TempDir Path dir) throws Exception {
        Path stale = Files.createDirectories(dir.resolve("out").resolve(".checkpoint-7.tmp"));
        Files.writeString(stale.resolve("model.safetensors"), "torn");
        TrainCommand.run(config(dir, "max_steps: 1\n"));
        assertTrue(!Files.exists(stale), "a killed run's temporary checkpoint is removed");
        assertTrue(!Files.exists(dir.resolve("out").resolve(".final-model.tmp")));
        assertEquals(weights(model).keySet(), weights(dir.resolve("out")).keySet());
    }

    /**
     * An output_dir whose file system refuses new files is found before the data or the model is
     * read. sysfs refuses them to everyone, root included, whom permission bits (Files.isWritable)
     * would let through.
     */
    @Test
    void anOutputDirThatCannotBeWrittenIsRefusedBeforeAnythingIsRead(@TempDir Path dir) throws Exception {
        Path sys = Path.of("/sys/kernel");
        assumeTrue(Files.isDirectory(sys), "needs Linux's sysfs");
        Path out = sys.resolve("spark-sft-out");
        UserError e = assertThrows(UserError.class, () -> TrainCommand.run(config(dir, "max_steps: 1\n",
                "output_dir=" + out, "dataset=missing.jsonl")));
        assertEquals("output_dir " + out + " is not writable: creating a file in " + sys + " failed (access denied); "
                + "choose another output_dir or make " + sys + " writable", e.getMessage());
    }

    /**
     * A run whose checkpoints cannot fit in output_dir's free space is refused before the model is
     * read (this model's weights are torn: loading them would fail differently).
     */
    @Test
    void aRunThatCannotFitInOutputDirIsRefusedBeforeTheModelIsLoaded(@TempDir Path dir) throws Exception {
        Path torn = Files.createDirectories(dir.resolve("torn-model"));
        try (var files = Files.list(model)) {
            for (Path f : files.toList()) {
                Files.copy(f, torn.resolve(f.getFileName()));
            }
        }
        Path weights = torn.resolve("model.safetensors");
        Files.write(weights, Arrays.copyOf(Files.readAllBytes(weights), (int) Files.size(weights) / 2));
        // 100 million checkpoints of about 100 KB: some 10 TB
        UserError e = assertThrows(UserError.class, () -> TrainCommand.run(config(dir,
                "max_steps: 100000000\nsave_steps: 1\n", "model_name_or_path=" + torn)));
        assertTrue(e.getMessage().startsWith("output_dir " + dir.resolve("out") + " has ")
                && e.getMessage().contains(" free, but this run writes at least ")
                && e.getMessage().contains("and 100000000 checkpoint(s) of ") && e.getMessage().contains("save_total_limit"),
                e.getMessage());
    }

    /** A run whose loss becomes non-finite stops before applying the step and saves no model. */
    @Test
    void aDivergingRunStopsBeforeANonFiniteStepAndSavesNothing(@TempDir Path dir) throws Exception {
        DivergedException e = assertThrows(DivergedException.class, () -> TrainCommand.run(config(dir,
                "max_steps: 6\nlearning_rate: 1.0e+30\nmax_grad_norm: 0\n")));
        assertTrue(e.getMessage().contains("training diverged at step") && e.getMessage().contains("Lower learning_rate"),
                e.getMessage());
        assertTrue(!Files.exists(dir.resolve("out").resolve("model.safetensors")), "no model is saved");
    }

    @Test
    void badSettingsNameTheKey(@TempDir Path dir) throws Exception {
        String m = assertThrows(IllegalArgumentException.class,
                () -> config(dir, "learning_rate: -1.0\nwarmup_steps: 5\nwarmup_ratio: 0.1\n")).getMessage();
        assertTrue(m.contains("learning_rate must be > 0, got -1.0"), m);
        assertTrue(m.contains("warmup_steps (5) and warmup_ratio (0.1) contradict each other"), m);
        m = assertThrows(IllegalArgumentException.class, () -> config(dir, "learning_rate: Infinity\nweight_decay: NaN\n"))
                .getMessage();
        assertTrue(m.contains("learning_rate: expected a finite number") && m.contains("weight_decay: expected a finite "
                + "number"), m);
        Path file = dir.resolve("not-a-dir");
        Files.writeString(file, "x");
        m = assertThrows(IllegalArgumentException.class,
                () -> TrainCommand.run(config(dir, "", "output_dir=" + file))).getMessage();
        assertTrue(m.contains("output_dir " + file + " is a file"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> TrainCommand.run(config(dir, "", "finetuning_type=lora", "lora_target=attn"))).getMessage();
        assertTrue(m.contains("lora_target: [attn] matches no linear module"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> TrainCommand.run(config(dir, "", "resume_from_checkpoint=true", "output_dir=" + dir.resolve("empty"))))
                .getMessage();
        assertTrue(m.contains("holds no checkpoint-N directory"), m);
    }

    @Test
    void freezeTrainsOnlyTheLastLayers(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "finetuning_type: freeze\nfreeze_trainable_layers: 1\nmax_steps: 2\n"
                + "learning_rate: 1.0e-2\n"));
        Map<String, Tensor> before = weights(model);
        Map<String, Tensor> after = weights(dir.resolve("out"));
        List<String> changed = new ArrayList<>();
        for (String n : before.keySet()) {
            if (!Arrays.equals(floats(before.get(n)), floats(after.get(n)))) {
                changed.add(n);
            }
        }
        assertTrue(changed.stream().allMatch(n -> n.startsWith("model.layers.1.")), changed.toString());
        assertTrue(changed.contains("model.layers.1.mlp.down_proj.weight"), changed.toString());
    }
}
