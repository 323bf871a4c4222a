package dev.sparksft.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.model.TinyModel;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Torch;
import dev.sparksft.template.Templates;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** do_predict end to end: generated_predictions.jsonl rows, order, escaping, stripping, metrics, reruns. */
class PredictionTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static final List<String[]> ROWS = List.of(
            new String[] {"Say \"hi\"", "hi \"there\""},
            new String[] {"two\nlines", "line one\nline two"},
            new String[] {"中文", "你好，世界"},
            new String[] {"a much longer prompt that makes the batch need left padding", "ok"},
            new String[] {"x", "émoji 🙂"});

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 3, 32, 2, 4, 2, 64, null, 0, 0));
        data = Files.createDirectories(shared.resolve("data"));
        StringBuilder lines = new StringBuilder();
        for (String[] r : ROWS) {
            lines.append(JSON.writeValueAsString(Map.of("instruction", r[0], "output", r[1]))).append('\n');
        }
        Files.writeString(data.resolve("test.jsonl"), lines.toString());
    }

    static SftConfig config(Path out, String... overrides) throws Exception {
        Path f = Files.createTempFile(shared, "predict", ".yaml");
        Files.writeString(f, "model_name_or_path: " + model + "\ntemplate: chatml\neval_dataset: test.jsonl\ndataset_dir: "
                + data + "\ncutoff_len: 256\nstage: sft\ndo_predict: true\npredict_with_generate: true\n"
                + "finetuning_type: full\noutput_dir: " + out + "\nper_device_eval_batch_size: 2\nmax_new_tokens: 6\n"
                + "do_sample: false\nnum_threads: 1\n");
        return SftConfig.load(f, List.of(overrides));
    }

    @Test
    void writesOnePromptStrippedRowPerExampleInInputOrder(@TempDir Path out) throws Exception {
        TrainCommand.run(config(out));
        Path file = out.resolve(Predictor.PREDICTIONS_FILE);
        String text = Files.readString(file, StandardCharsets.UTF_8);
        assertTrue(text.contains("你好，世界") && text.contains("🙂"), "non-ASCII written as is, not \\u escapes");
        List<String> lines = text.lines().toList();
        assertEquals(ROWS.size(), lines.size());

        try (Tokenizer raw = Tokenizer.load(model)) {
            var template = Templates.get("chatml");
            Tokenizer tok = template.prepare(raw);
            CausalLm m = CausalLm.load(model, tok.vocabSize());
            for (int i = 0; i < ROWS.size(); i++) {
                JsonNode row = JSON.readTree(lines.get(i));
                assertEquals(List.of("prompt", "predict", "label"), iterable(row));
                // the label is the response as the template ends it (chatml: <|im_end|>, dropped, and "\n")
                assertEquals(ROWS.get(i)[1] + "\n", row.get("label").asText(), "label of row " + i + " (order kept)");
                assertTrue(row.get("prompt").asText().contains("<|im_start|>user\n" + ROWS.get(i)[0]),
                        "the prompt keeps its special tokens: " + row.get("prompt"));
                // predict is exactly the greedy continuation of this prompt alone, without the prompt
                int[] prompt = tok.encode(row.get("prompt").asText());
                int[] alone = new Generator(m, Sampling.greedy(6), new HashSet<>(template.stopTokenIds(tok)),
                        tok.padId(), 1, false).generate(List.of(prompt)).get(0).ids();
                assertEquals(tok.decode(alone, true), row.get("predict").asText(), "row " + i);
                assertFalse(row.get("predict").asText().contains("<|im_start|>user"), "prompt stripped");
            }
        }
        JsonNode results = JSON.readTree(out.resolve("predict_results.json").toFile());
        for (String k : List.of("predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l",
                "predict_runtime", "predict_samples_per_second")) {
            assertTrue(results.has(k), k);
        }

        // a rerun replaces the file: same rows, not appended
        TrainCommand.run(config(out));
        assertEquals(lines, Files.readString(file, StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void evaluationWithGenerationAddsTheSimilarityMetrics(@TempDir Path out) throws Exception {
        TrainCommand.run(config(out, "do_predict=false", "do_eval=true", "dataset=test.jsonl"));
        JsonNode eval = JSON.readTree(out.resolve("eval_results.json").toFile());
        for (String k : List.of("eval_loss", "eval_bleu-4", "eval_rouge-1", "eval_rouge-2", "eval_rouge-l")) {
            assertTrue(eval.has(k), k + " in " + eval);
        }
    }

    static List<String> iterable(JsonNode row) {
        List<String> names = new java.util.ArrayList<>();
        row.fieldNames().forEachRemaining(names::add);
        return names;
    }

    @Test
    void emptyPredictionsAndLabelsAreWrittenAndScoreZero(@TempDir Path out) throws Exception {
        List<Predictor.Row> rows = List.of(new Predictor.Row(0, "p", "", "label", "", "label"));
        Predictor.write(out, rows);
        JsonNode row = JSON.readTree(Files.readAllLines(out.resolve(Predictor.PREDICTIONS_FILE)).get(0));
        assertEquals("", row.get("predict").asText());
        Predictor.metrics(rows, "predict_").values().forEach(v -> assertEquals(0.0, v));
    }

    @Test
    void predictionSettingsAreCheckedWithTheirNames(@TempDir Path out) {
        Exception e = assertThrows(IllegalArgumentException.class, () -> config(out, "num_beams=4"));
        assertTrue(e.getMessage().contains("num_beams: 4: beam search is not implemented"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(out, "predict_with_generate=false"));
        assertTrue(e.getMessage().contains("do_predict needs predict_with_generate: true"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(out, "do_sample=true", "top_p=1.5"));
        assertTrue(e.getMessage().contains("top_p must be in (0, 1]"), e.getMessage());
    }

    @Test
    void generationSortsByLengthToCutPadding() {
        List<int[]> prompts = List.of(new int[30], new int[2], new int[29], new int[3]);
        // sorted: batches {2, 3} and {29, 30}: 1 + 1 pads of 6 + 60 slots; as given: {30, 2} and {29, 3}: 28 + 26 of 60 + 58
        assertEquals(2 / 66.0, Generator.paddingFraction(prompts, 2, true), 1e-12);
        assertEquals(54 / 118.0, Generator.paddingFraction(prompts, 2, false), 1e-12);
    }
}
