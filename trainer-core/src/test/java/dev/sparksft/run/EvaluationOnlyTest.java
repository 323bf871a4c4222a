package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An evaluation-only run (do_train: false, do_eval: true, eval_dataset and no dataset), valid in
 * LLaMA-Factory: it reports the loss the training run reported for the same model and eval set.
 */
class EvaluationOnlyTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static SftConfig config(Path dir, String yaml) throws Exception {
        return SftConfig.load(Files.writeString(dir.resolve(Math.abs(yaml.hashCode()) + ".yaml"), yaml), List.of());
    }

    @Test
    void evaluatesASavedModelToTheLossItsTrainingReported(@TempDir Path dir) throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("qwen3", dir.resolve("m"), 3, 32, 2, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("train.jsonl"), 32, 6, 1);
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("eval.jsonl"), 12, 6, 2);
        String common = "template: qwen3_nothink\ndataset_dir: " + dir + "\ncutoff_len: 64\nstage: sft\n"
                + "finetuning_type: full\nper_device_eval_batch_size: 5\ncompute_accuracy: true\nnum_threads: 1\n"
                + "eval_dataset: eval.jsonl\ndo_eval: true\n";
        LocalRun.run(config(dir, common + "model_name_or_path: " + dir.resolve("m") + "\ndo_train: true\ndataset: train.jsonl\n"
                + "output_dir: " + dir.resolve("trained") + "\nper_device_train_batch_size: 4\nmax_steps: 3\n"
                + "learning_rate: 1.0e-2\nsave_strategy: \"no\"\n"));
        JsonNode trained = JSON.readTree(dir.resolve("trained/eval_results.json").toFile());

        LocalRun.run(config(dir, common + "model_name_or_path: " + dir.resolve("trained") + "\ndo_train: false\n"
                + "output_dir: " + dir.resolve("evaluated") + "\n"));
        JsonNode evaluated = JSON.readTree(dir.resolve("evaluated/eval_results.json").toFile());
        assertEquals(trained.get("eval_loss").asDouble(), evaluated.get("eval_loss").asDouble(),
                1e-6 * trained.get("eval_loss").asDouble(), "the same model and eval set give the same loss");
        assertEquals(trained.get("eval_accuracy").asDouble(), evaluated.get("eval_accuracy").asDouble(), 1e-9);
        assertFalse(evaluated.has("epoch"), "Trainer.evaluate without training reports no epoch");
        assertFalse(Files.exists(dir.resolve("evaluated/model.safetensors")), "nothing was trained, nothing saved");

        UserError noEval = assertThrows(UserError.class, () -> LocalRun.run(config(dir, common.replace(
                "eval_dataset: eval.jsonl\n", "dataset: train.jsonl\n") + "model_name_or_path: " + dir.resolve("trained")
                + "\ndo_train: false\noutput_dir: " + dir.resolve("o2") + "\n")));
        assertTrue(noEval.getMessage().contains("do_eval needs an eval set"), noEval.getMessage());
    }
}
