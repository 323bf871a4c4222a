package dev.sparksft.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.data.TokenizedFiles;
import dev.sparksft.run.RunData;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's mllm_demo through the qwen2_vl template, against the reference that
 * src/test/python/make_mm_fixtures.py computed with transformers' Qwen2-VL image processor (the
 * grids), LLaMA-Factory's placeholder expansion and transformers' tokenizer (the ids): per row the
 * same image grids, image tokens, input ids and labels, for the default image_max_pixels and for
 * one that shrinks the images. The data and its images are a copy of LLaMA-Factory's demo set in
 * src/test/resources/mllm; the tokenizer is Qwen's (its vocabulary has the vision tokens).
 */
class MultimodalEncodingTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ObjectMapper YAML = new ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory());
    static Path data;
    static Path model;
    static JsonNode expected;

    @BeforeAll
    static void setUp(@TempDir Path tmp) throws Exception {
        data = Path.of(MultimodalEncodingTest.class.getResource("/mllm/expected.json").toURI()).getParent();
        expected = JSON.readTree(data.resolve("expected.json").toFile());
        model = qwen2VlModel(tmp.resolve("model"));
    }

    /** A model directory with Qwen's tokenizer and Qwen2-VL's preprocessor_config.json (no weights: data only). */
    static Path qwen2VlModel(Path dir) throws Exception {
        Files.createDirectories(dir);
        Path tok = Path.of(MultimodalEncodingTest.class.getResource("/templates/real-tokenizers/qwen3/tokenizer.json")
                .toURI()).getParent();
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(tok.resolve(f), dir.resolve(f));
        }
        Path mllm = Path.of(MultimodalEncodingTest.class.getResource("/mllm/expected.json").toURI()).getParent();
        Files.copy(mllm.resolve("qwen2_vl/preprocessor_config.json"), dir.resolve("preprocessor_config.json"));
        return dir;
    }

    static SftConfig config(Path datasetDir, String... more) throws Exception {
        ObjectNode v = JSON.createObjectNode();
        v.put("model_name_or_path", model.toString());
        v.put("template", "qwen2_vl");
        v.put("dataset", "mllm_demo");
        v.put("dataset_dir", datasetDir.toString());
        for (String kv : more) {
            String[] p = kv.split("=", 2);
            v.set(p[0], YAML.readTree(p[1]));
        }
        return SftConfig.fromValues(v);
    }

    static List<TokenizedExample> encode(SftConfig config) throws Exception {
        try (Tokenizer raw = Tokenizer.load(model)) {
            RunData run = RunData.fromDatasets(config, raw);
            List<TokenizedExample> out = new ArrayList<>();
            for (Conversation c : run.train()) {
                out.add(run.encoder().encode(c));
            }
            return out;
        }
    }

    @Test
    void everyRowHasTheProcessorsGridsAndTheReferenceIdsAndLabels() throws Exception {
        for (int maxPixels : new int[] {768 * 768, 128 * 128}) {
            List<TokenizedExample> examples = encode(config(data, "image_max_pixels=" + maxPixels));
            int checked = 0;
            for (JsonNode c : expected.get("cases")) {
                if (c.get("image_max_pixels").asInt() != maxPixels) {
                    continue;
                }
                int row = c.get("row").asInt();
                TokenizedExample ex = examples.get(row);
                String where = "row " + row + " at image_max_pixels " + maxPixels;
                assertEquals(c.get("images").size(), ex.images().size(), where);
                for (int i = 0; i < ex.images().size(); i++) {
                    TokenizedExample.Image im = ex.images().get(i);
                    JsonNode thw = c.get("image_grid_thw").get(i);
                    assertEquals(List.of(thw.get(0).asInt(), thw.get(1).asInt(), thw.get(2).asInt()),
                            List.of(im.gridT(), im.gridH(), im.gridW()), where + " image " + i);
                    assertEquals(data.resolve(c.get("images").get(i).asText()).toString(), im.path(),
                            "resolved under media_dir (dataset_dir)");
                }
                int pad = 151655;
                int expectedPads = 0;
                for (JsonNode n : c.get("image_tokens")) {
                    expectedPads += n.asInt();
                }
                assertEquals(expectedPads, java.util.Arrays.stream(ex.inputIds()).filter(id -> id == pad).count(), where);
                assertArrayEquals(ints(c.get("input_ids")), ex.inputIds(), where);
                assertArrayEquals(ints(c.get("labels")), ex.labels(), where);
                checked++;
            }
            assertEquals(6, checked);
        }
    }

    @Test
    void tokenizedFilesKeepTheImagesAndTheirGrids(@TempDir Path tmp) throws Exception {
        List<TokenizedExample> examples = encode(config(data));
        Path file = tmp.resolve("train.jsonl");
        TokenizedFiles.write(file, examples);
        String first = Files.readAllLines(file).get(0);
        assertTrue(first.contains("\"images\":[\"" + data.resolve("mllm_demo_data/1.jpg")), first);
        List<TokenizedExample> back = TokenizedFiles.read(file);
        for (int i = 0; i < examples.size(); i++) {
            assertArrayEquals(examples.get(i).inputIds(), back.get(i).inputIds());
            assertArrayEquals(examples.get(i).labels(), back.get(i).labels());
            assertEquals(examples.get(i).images(), back.get(i).images());
        }
    }

    @Test
    void mediaDirIsWhereRelativeImagePathsAreLookedUpFirst(@TempDir Path tmp) throws Exception {
        // the rows and dataset_info.json in one folder, the images in another
        Path rows = Files.createDirectories(tmp.resolve("rows"));
        Files.copy(data.resolve("mllm_demo.json"), rows.resolve("mllm_demo.json"));
        Files.copy(data.resolve("dataset_info.json"), rows.resolve("dataset_info.json"));
        UserError e = assertThrows(UserError.class, () -> encode(config(rows)));
        assertTrue(e.getMessage().contains("mllm_demo.json [0]: image 'mllm_demo_data/1.jpg' does not exist")
                && e.getMessage().contains(rows.resolve("mllm_demo_data/1.jpg").toString())
                && e.getMessage().contains("set media_dir"), e.getMessage());
        List<TokenizedExample> examples = encode(config(rows, "media_dir=" + data));
        assertEquals(data.resolve("mllm_demo_data/2.jpg").toString(), examples.get(1).images().get(0).path());
    }

    @Test
    void packingWithAnImageTemplateIsRefused() throws Exception {
        UserError e = assertThrows(UserError.class, () -> encode(config(data, "packing=true")));
        assertTrue(e.getMessage().contains("packing: true with template: qwen2_vl: packing examples with images is not "
                + "supported yet; set packing: false"), e.getMessage());
    }

    @Test
    void aTextTemplateRefusesImages() {
        ObjectNode v = (ObjectNode) JSON.valueToTree(java.util.Map.of("model_name_or_path", model.toString(),
                "template", "qwen", "dataset", "mllm_demo", "dataset_dir", data.toString()));
        UserError e = assertThrows(UserError.class, () -> encode(SftConfig.fromValues(v)));
        assertTrue(e.getMessage().contains("mllm_demo.json [0]: the row has 2 image(s), but template 'qwen' is a "
                + "text template; set template: qwen2_vl"), e.getMessage());
    }

    @Test
    void aModelWithoutPreprocessorConfigIsNamed(@TempDir Path tmp) throws Exception {
        Path bare = Files.createDirectories(tmp.resolve("m"));
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(model.resolve(f), bare.resolve(f));
        }
        SftConfig c = config(data);
        try (Tokenizer raw = Tokenizer.load(bare)) {
            UserError e = assertThrows(UserError.class, () -> SupervisedEncoder.of(c.data(), c.model(), raw, bare));
            assertTrue(e.getMessage().contains("preprocessor_config.json does not exist"), e.getMessage());
        }
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }
}
