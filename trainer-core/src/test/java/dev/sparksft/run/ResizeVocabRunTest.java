package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.Safetensors;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run over a tokenizer that add_special_tokens and the llama3 template add tokens to: it trains,
 * saves the resized model with its tokenizer (full) or the resized modules with the adapter (LoRA),
 * and what it saved loads back and predicts. The tiny model's tokenizer has 259 tokens (bytes and
 * three ChatML tokens), so <tool> is 259, <|eot_id|> (llama3's eos) 260, <|eom_id|> 261: 262 tokens,
 * an embedding of 320 rows.
 */
class ResizeVocabRunTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static SftConfig config(Path dir, String name, String yaml) throws Exception {
        return SftConfig.load(Files.writeString(dir.resolve(name + ".yaml"), yaml), List.of());
    }

    static String common(Path dir) {
        return "template: llama3\ndataset_dir: " + dir + "\ncutoff_len: 64\nstage: sft\nnum_threads: 1\n"
                + "add_special_tokens: <tool>\nper_device_eval_batch_size: 4\nmax_new_tokens: 4\ndo_sample: false\n";
    }

    static String train(Path dir, Path out, String finetuning) {
        return common(dir) + "model_name_or_path: " + dir.resolve("m") + "\ndo_train: true\ndataset: train.jsonl\n"
                + "finetuning_type: " + finetuning + "\noutput_dir: " + out + "\nper_device_train_batch_size: 4\n"
                + "max_steps: 2\nlearning_rate: 1.0e-2\nsave_strategy: \"no\"\n";
    }

    static String predict(Path dir, Path out) {
        return "do_train: false\ndo_predict: true\npredict_with_generate: true\neval_dataset: eval.jsonl\noutput_dir: "
                + out + "\n";
    }

    @Test
    void aFullRunSavesTheResizedModelAndItsTokenizerWhichPredict(@TempDir Path dir) throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", dir.resolve("m"), 3, 32, 1, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("train.jsonl"), 8, 5, 1);
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("eval.jsonl"), 3, 5, 2);
        Path out = dir.resolve("full");
        LocalRun.run(config(dir, "full", train(dir, out, "full")));

        assertEquals(320, JSON.readTree(out.resolve("config.json").toFile()).get("vocab_size").asInt());
        Safetensors.Header weights = Safetensors.readHeader(out.resolve("model.safetensors"));
        assertArrayEquals(new long[] {320, 32}, weights.entries().get("model.embed_tokens.weight").shape());
        assertArrayEquals(new long[] {320, 32}, weights.entries().get("lm_head.weight").shape());
        JsonNode cfg = JSON.readTree(out.resolve("tokenizer_config.json").toFile());
        assertEquals("<|eot_id|>", cfg.get("eos_token").asText(), "the template's eos, as save_pretrained writes it");
        assertEquals("<|eom_id|>", cfg.get("added_tokens_decoder").get("261").get("content").asText());
        try (Tokenizer saved = Tokenizer.load(out)) {
            assertArrayEquals(new int[] {259, 'a', 260, 261}, saved.encode("<tool>a<|eot_id|><|eom_id|>"));
            assertEquals(262, saved.length());
        }

        // predicting with the saved model: its tokenizer has the tokens, its embedding the rows
        Path predicted = dir.resolve("predicted");
        LocalRun.run(config(dir, "predict", common(dir) + "model_name_or_path: " + out + "\nfinetuning_type: full\n"
                + predict(dir, predicted)));
        assertEquals(3, Files.readAllLines(predicted.resolve("generated_predictions.jsonl")).size());
    }

    @Test
    void aLoraRunTrainsAndSavesTheResizedEmbeddingAndHeadWithTheAdapter(@TempDir Path dir) throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", dir.resolve("m"), 3, 32, 1, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("train.jsonl"), 8, 5, 1);
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("eval.jsonl"), 3, 5, 2);
        Path out = dir.resolve("lora");
        LocalRun.run(config(dir, "lora", train(dir, out, "lora")));

        JsonNode adapterConfig = JSON.readTree(out.resolve(LoraAdapter.CONFIG_FILE).toFile());
        List<String> saved = new ArrayList<>();
        adapterConfig.get("modules_to_save").forEach(n -> saved.add(n.asText()));
        assertEquals(List.of("embed_tokens", "lm_head"), saved, "LLaMA-Factory: vocab resized, both made trainable");
        Safetensors.Header adapter = Safetensors.readHeader(out.resolve(LoraAdapter.WEIGHTS_FILE));
        long resized = adapter.entries().values().stream().filter(e -> e.name().contains("embed_tokens")
                || e.name().contains("lm_head")).peek(e -> assertArrayEquals(new long[] {320, 32}, e.shape(), e.name()))
                .count();
        assertEquals(2, resized, "the adapter holds the resized embed_tokens and lm_head: " + adapter.entries().keySet());
        try (Tokenizer tok = Tokenizer.load(out)) {
            assertEquals(259, tok.tokenId("<tool>").orElseThrow(), "the adapter's directory holds the tokenizer too");
        }

        // predicting with base + adapter: the base grows again, the adapter's modules replace its rows
        Path predicted = dir.resolve("predicted");
        LocalRun.run(config(dir, "predict", common(dir) + "model_name_or_path: " + dir.resolve("m")
                + "\nfinetuning_type: lora\nadapter_name_or_path: " + out + "\n" + predict(dir, predicted)));
        assertEquals(3, Files.readAllLines(predicted.resolve("generated_predictions.jsonl")).size());
        assertTrue(Files.readString(predicted.resolve("generated_predictions.jsonl")).contains("\"predict\""));
    }

    @Test
    void asftWithAResizedVocabularyIsRefusedByName(@TempDir Path dir) throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", dir.resolve("m"), 3, 32, 1, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.REVERSE, dir.resolve("train.jsonl"), 8, 5, 1);
        dev.sparksft.UserError e = org.junit.jupiter.api.Assertions.assertThrows(dev.sparksft.UserError.class,
                () -> LocalRun.run(config(dir, "asft", train(dir, dir.resolve("asft"), "full") + "use_asft_loss: true\n")));
        assertTrue(e.getMessage().contains("use_asft_loss: true with a resized vocabulary")
                && e.getMessage().contains("259 -> 320 rows") && e.getMessage().contains("use_asft_loss: false"), e.getMessage());
    }
}
