package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.data.TokenizedFiles;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `sft tokenize` on mllm_demo with qwen2_vl: each line carries its images' resolved paths and grids beside the ids. */
class MultimodalTokenizeTest {
    static void copy(String resource, Path to) throws Exception {
        Files.createDirectories(to.getParent());
        try (InputStream in = MultimodalTokenizeTest.class.getResourceAsStream(resource)) {
            Files.copy(in, to);
        }
    }

    @Test
    void tokenizeWritesImagesBesideInputIdsAndLabels(@TempDir Path dir) throws Exception {
        for (String f : List.of("dataset_info.json", "mllm_demo.json", "mllm_demo_data/1.jpg", "mllm_demo_data/2.jpg",
                "mllm_demo_data/3.jpg")) {
            copy("/mllm/" + f, dir.resolve("data").resolve(f));
        }
        copy("/templates/real-tokenizers/qwen3/tokenizer.json", dir.resolve("model/tokenizer.json"));
        copy("/templates/real-tokenizers/qwen3/tokenizer_config.json", dir.resolve("model/tokenizer_config.json"));
        copy("/mllm/qwen2_vl/preprocessor_config.json", dir.resolve("model/preprocessor_config.json"));
        Path yaml = dir.resolve("sft.yaml");
        Files.writeString(yaml, "model_name_or_path: " + dir.resolve("model") + "\ntemplate: qwen2_vl\n"
                + "dataset: mllm_demo\ndataset_dir: " + dir.resolve("data") + "\ntokenized_path: " + dir.resolve("tok") + "\n");
        TokenizeCommand.run(SftConfig.load(yaml, List.of()));
        List<String> lines = Files.readAllLines(dir.resolve("tok/train.jsonl"));
        assertEquals(6, lines.size());
        JsonNode first = new ObjectMapper().readTree(lines.get(0));
        String one = dir.resolve("data/mllm_demo_data/1.jpg").toString();
        assertEquals(List.of(one, one), List.of(first.get("images").get(0).asText(), first.get("images").get(1).asText()));
        assertEquals("[[1,12,22],[1,12,22]]", first.get("image_grid_thw").toString());
        List<TokenizedExample> back = TokenizedFiles.read(dir.resolve("tok/train.jsonl"));
        assertEquals(new TokenizedExample.Image(dir.resolve("data/mllm_demo_data/2.jpg").toString(), 1, 14, 22),
                back.get(1).images().get(0));
        assertTrue(back.get(0).inputIds().length == first.get("input_ids").size());
    }
}
