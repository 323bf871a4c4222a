package dev.sparksft.cli;

import dev.sparksft.model.TinyModel;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `sft tokenize` end to end: a tiny model, a dataset on disk, a YAML, and the JSONL it writes. */
class TokenizeCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Path setup(Path dir) throws Exception {
        TinyModel.write(SftMain.parseTinyModel(List.of("--arch", "qwen3", "--out", dir.resolve("model").toString(),
                "--hidden", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32", "--merges", "0")));
        Files.createDirectories(dir.resolve("data"));
        Files.writeString(dir.resolve("data/train.jsonl"), """
                {"instruction": "Reverse", "input": "abc", "output": "cba"}
                {"conversations": []}
                {"instruction": "Reverse", "input": "xyz", "output": "zyx"}
                """);
        Files.writeString(dir.resolve("data/dataset_info.json"),
                "{\"rev\": {\"file_name\": \"train.jsonl\"}, \"rev_eval\": {\"file_name\": \"train.jsonl\"}}");
        Path yaml = dir.resolve("sft.yaml");
        Files.writeString(yaml, "model_name_or_path: " + dir.resolve("model") + "\ntemplate: qwen3_nothink\n"
                + "dataset: rev\neval_dataset: rev_eval\ndataset_dir: " + dir.resolve("data") + "\ncutoff_len: 64\n");
        return yaml;
    }

    static List<JsonNode> rows(Path file) throws Exception {
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            rows.add(JSON.readTree(line));
        }
        return rows;
    }

    @Test
    void writesInputIdsAndLabelsPerExample(@TempDir Path dir) throws Exception {
        Path yaml = setup(dir);
        TokenizeCommand.run(SftConfig.load(yaml, List.of("tokenized_path=" + dir.resolve("tok"))));
        List<JsonNode> train = rows(dir.resolve("tok/train.jsonl"));
        assertEquals(2, train.size(), "the row without instruction/output is dropped (alpaca rows have no response)");
        assertEquals(2, rows(dir.resolve("tok/eval.jsonl")).size());
        try (Tokenizer tok = Tokenizer.load(dir.resolve("model"))) {
            JsonNode first = train.get(0);
            int n = first.get("input_ids").size();
            assertEquals(n, first.get("labels").size());
            int[] ids = new int[n];
            List<Integer> labelled = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ids[i] = first.get("input_ids").get(i).asInt();
                int label = first.get("labels").get(i).asInt();
                if (label != -100) {
                    assertEquals(ids[i], label);
                    labelled.add(label);
                }
            }
            assertEquals("<|im_start|>user\nReverse\nabc<|im_end|>\n<|im_start|>assistant\ncba<|im_end|>\n",
                    tok.decode(ids, false));
            assertEquals("cba<|im_end|>\n", tok.decode(labelled.stream().mapToInt(Integer::intValue).toArray(), false));
        }
    }

    @Test
    void cutoffLenBoundsEveryExample(@TempDir Path dir) throws Exception {
        Path yaml = setup(dir);
        TokenizeCommand.run(SftConfig.load(yaml, List.of("tokenized_path=" + dir.resolve("tok"), "cutoff_len=10")));
        for (JsonNode row : rows(dir.resolve("tok/train.jsonl"))) {
            assertEquals(10, row.get("input_ids").size());
        }
    }

    @Test
    void missingTokenizedPathAndMissingTokenizerAreClear(@TempDir Path dir) throws Exception {
        Path yaml = setup(dir);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TokenizeCommand.run(SftConfig.load(yaml, List.of())));
        assertTrue(e.getMessage().contains("tokenized_path is required"), e.getMessage());
        Files.delete(dir.resolve("model/tokenizer.json"));
        e = assertThrows(IllegalArgumentException.class,
                () -> TokenizeCommand.run(SftConfig.load(yaml, List.of("tokenized_path=" + dir.resolve("tok")))));
        assertTrue(e.getMessage().contains("has no tokenizer.json"), e.getMessage());
    }
}
