package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
 * tokenized_path in a training run, as LLaMA-Factory has it: a run tokenizes its datasets and
 * saves them there; a run that finds them there trains on them and ignores the data arguments,
 * with the same losses (packed rows keep their segments).
 */
class TokenizedPathTest {
    static List<String> losses(Path out) throws Exception {
        return Files.readAllLines(out.resolve("trainer_log.jsonl")).stream()
                .map(l -> l.replaceAll(".*\"loss\":([^,]*),.*", "$1")).toList();
    }

    static SftConfig config(Path dir, String extra) throws Exception {
        String yaml = "model_name_or_path: " + dir.resolve("m") + "\ntemplate: qwen3_nothink\ndataset_dir: " + dir
                + "\ncutoff_len: 160\nstage: sft\ndo_train: true\nfinetuning_type: full\nper_device_train_batch_size: 4\n"
                + "max_steps: 4\nlearning_rate: 1.0e-2\nlogging_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\n"
                + "tokenized_path: " + dir.resolve("tokenized") + "\n" + extra;
        return SftConfig.load(Files.writeString(dir.resolve(Math.abs(yaml.hashCode()) + ".yaml"), yaml), List.of());
    }

    @Test
    void aRunSavesItsTokenizedSetAndTheNextTrainsOnItAlike(@TempDir Path dir) throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("qwen3", dir.resolve("m"), 4, 32, 2, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("train.jsonl"), 40, 6, 1);
        LocalRun.run(config(dir, "dataset: train.jsonl\npacking: true\noutput_dir: " + dir.resolve("first") + "\n"));
        assertTrue(Files.isRegularFile(dir.resolve("tokenized/train.jsonl")), "the tokenized set is saved");
        assertTrue(Files.readString(dir.resolve("tokenized/train.jsonl")).contains("\"segment_lengths\""),
                "packed rows keep their segments");

        // the dataset named here does not exist: the saved set is used, not the data arguments
        LocalRun.run(config(dir, "dataset: gone.jsonl\npacking: true\noutput_dir: " + dir.resolve("second") + "\n"));
        assertEquals(losses(dir.resolve("first")), losses(dir.resolve("second")));

        UserError predict = assertThrows(UserError.class, () -> LocalRun.run(config(dir,
                "do_predict: true\npredict_with_generate: true\noutput_dir: " + dir.resolve("third") + "\n")));
        assertTrue(predict.getMessage().contains("tokenized_path does not keep"), predict.getMessage());
    }
}
