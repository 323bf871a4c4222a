package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.model.TinyModel;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The quickstart in small: a random tiny model must really learn to sort letters in a few seconds. */
class LearningTest {
    @Test
    void lossDropsAndHeldOutAccuracyIsNonTrivial(@TempDir Path dir) throws Exception {
        Torch.load(1);
        Path model = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 64, 2, 4, 4, 256, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.SORT, dir.resolve("data/train.jsonl"), 1000, 5, 1);
        SyntheticTasks.write(SyntheticTasks.Task.SORT, dir.resolve("data/eval.jsonl"), 100, 5, 2);
        Path yaml = dir.resolve("learn.yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\n"
                + "eval_dataset: eval.jsonl\ndataset_dir: " + dir.resolve("data") + "\ncutoff_len: 64\nstage: sft\n"
                + "do_train: true\ndo_eval: true\nfinetuning_type: full\noutput_dir: " + dir.resolve("out") + "\n"
                + "per_device_train_batch_size: 16\nlearning_rate: 5.0e-3\nmax_steps: 300\nlr_scheduler_type: cosine\n"
                + "warmup_ratio: 0.05\nlogging_steps: 10\nsave_strategy: \"no\"\ncompute_accuracy: true\nnum_threads: 1\n");
        TrainCommand.run(SftConfig.load(yaml, List.of()));
        ObjectMapper json = new ObjectMapper();
        List<String> log = Files.readAllLines(dir.resolve("out/trainer_log.jsonl"));
        double first = json.readTree(log.get(0)).get("loss").asDouble();
        double last = json.readTree(log.get(log.size() - 1)).get("loss").asDouble();
        JsonNode eval = json.readTree(dir.resolve("out/eval_results.json").toFile());
        double accuracy = eval.get("eval_accuracy").asDouble();
        System.out.printf("learning: loss %.3f -> %.3f, held-out token accuracy %.3f%n", first, last, accuracy);
        // measured here: 5.13 -> 0.27 and 0.94
        assertTrue(last < 0.25 * first, "loss must fall to a quarter: " + first + " -> " + last);
        // predicting only the end-of-turn tokens gives about 2/6; the letters must be learned too
        assertTrue(accuracy > 0.8, "held-out accuracy " + accuracy);
    }
}
