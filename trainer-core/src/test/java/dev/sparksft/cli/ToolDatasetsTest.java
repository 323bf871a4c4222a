package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.generate.Predictor;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's two glaive_toolcall demo sets (a subset of their rows, with their
 * dataset_info.json entries) end to end: a tiny model trains a step on both and predicts for one,
 * the tool_format key reaches the tokenized data, and broken tools or calls are one line naming
 * the row. ToolCallParityTest pins the exact ids.
 */
class ToolDatasetsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path model;
    static Path glaive;

    @BeforeAll
    static void tinyModel() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(SftMain.parseTinyModel(List.of("--arch", "qwen3", "--out", model.toString(), "--hidden", "16",
                "--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32", "--merges", "0")));
        glaive = Path.of(ToolDatasetsTest.class.getResource("/tools/dataset_info.json").toURI()).getParent();
    }

    static SftConfig config(Path dir, String dataDir, String extra, String... overrides) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model + "\ntemplate: qwen3\n"
                + "dataset: glaive_toolcall_en_demo,glaive_toolcall_zh_demo\ndataset_dir: " + dataDir
                + "\ncutoff_len: 4096\nstage: sft\nfinetuning_type: full\noutput_dir: " + dir.resolve("out")
                + "\nper_device_train_batch_size: 4\nmax_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\n", extra));
        return SftConfig.load(f, List.of(overrides));
    }

    @Test
    void bothDemoSetsTrainAStepAndPredict(@TempDir Path dir) throws Exception {
        var result = TrainCommand.run(config(dir, glaive.toString(), "do_train: true\ndo_predict: true\n"
                + "predict_with_generate: true\neval_dataset: glaive_toolcall_zh_demo\nmax_samples: 4\n"
                + "max_new_tokens: 2\ndo_sample: false\nper_device_eval_batch_size: 2\n"));
        assertEquals(1, result.globalStep());
        JsonNode train = JSON.readTree(dir.resolve("out/train_results.json").toFile());
        assertTrue(Double.isFinite(train.get("train_loss").asDouble()), train.toString());
        List<String> predictions = Files.readAllLines(dir.resolve("out").resolve(Predictor.PREDICTIONS_FILE),
                StandardCharsets.UTF_8);
        assertEquals(4, predictions.size());
        // zh row 0: human, function_call, observation, gpt; tools in the system prompt
        String prompt = JSON.readTree(predictions.get(0)).get("prompt").asText();
        assertTrue(prompt.startsWith("<|im_start|>system\n\n\n# Tools\n\nYou may call one or more functions"), prompt);
        // encode_oneturn adds the empty thought to the response only, not to the earlier call
        assertTrue(prompt.contains("<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": "
                + "\"generate_invoice\", \"arguments\": {\"customer_name\": \"约翰·多伊\""), prompt);
        assertTrue(prompt.contains("<|im_start|>user\n<tool_response>\n{\"invoice_id\": \"INV12345\""), prompt);
    }

    @Test
    void toolFormatReplacesTheTemplatesFormatters(@TempDir Path dir) throws Exception {
        TokenizeCommand.run(config(dir, glaive.toString(), "template: qwen\ntool_format: llama3\nmax_samples: 1\n",
                "tokenized_path=" + dir.resolve("tok")));
        JsonNode row = JSON.readTree(Files.readAllLines(dir.resolve("tok/train.jsonl")).get(0));
        int[] ids = new int[row.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = row.get("input_ids").get(i).asInt();
        }
        try (Tokenizer tok = Tokenizer.load(model)) {
            String text = tok.decode(ids, false);
            // qwen's default system prompt, then llama3's tool prompt
            assertTrue(text.startsWith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                    + "assistant.Cutting Knowledge Date: December 2023\nToday Date: "), text);
            // en row 0's call written as llama3 does, in the plain slots tool_format gives: content + eos, no "\n"
            assertTrue(text.contains("<|im_start|>assistant\n{\"name\": \"search_recipes\", \"parameters\": "
                    + "{\"ingredients\": [\"chicken\", \"bell peppers\", \"rice\"]}}<|im_end|><|im_start|>user\n"
                    + "<tool_response>\n"), text);
        }
        UserError e = assertThrows(UserError.class, () -> TrainCommand.run(config(dir, glaive.toString(),
                "do_train: true\ntool_format: qwen2\n")));
        assertTrue(e.getMessage().startsWith("tool_format: unknown tool format 'qwen2'")
                && e.getMessage().contains("did you mean 'qwen'"), e.getMessage());
    }

    @Test
    void brokenToolsOrCallsNameTheRow(@TempDir Path dir) throws Exception {
        Path data = Files.createDirectories(dir.resolve("data"));
        Files.copy(glaive.resolve("dataset_info.json"), data.resolve("dataset_info.json"));
        String call = "{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"function_call\", \"value\": %s}, "
                + "{\"from\": \"observation\", \"value\": \"{}\"}, {\"from\": \"gpt\", \"value\": \"a\"}";
        Files.writeString(data.resolve("glaive_toolcall_en_demo.json"), "[{\"conversations\": ["
                + String.format(call, "\"{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {}}\"") + "], \"tools\": \"[{]\"}]");
        Files.writeString(data.resolve("glaive_toolcall_zh_demo.json"), "[{\"conversations\": ["
                + String.format(call, "\"call f\"") + "], \"tools\": \"\"}]");
        UserError e = assertThrows(UserError.class, () -> TokenizeCommand.run(config(dir, data.toString(),
                "dataset: glaive_toolcall_en_demo\n", "tokenized_path=" + dir.resolve("tok"))));
        assertTrue(e.getMessage().startsWith("glaive_toolcall_en_demo.json [0]: tools: the value is not JSON: [{]"),
                e.getMessage());
        e = assertThrows(UserError.class, () -> TokenizeCommand.run(config(dir, data.toString(),
                "dataset: glaive_toolcall_zh_demo\n", "tokenized_path=" + dir.resolve("tok"))));
        assertTrue(e.getMessage().startsWith("glaive_toolcall_zh_demo.json [0]: function call message 'call f': it is "
                + "not JSON"), e.getMessage());
    }
}
