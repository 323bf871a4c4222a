package dev.sparksft.generate;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.GeneratingArguments;
import dev.sparksft.data.Conversation;
import dev.sparksft.metrics.Similarity;
import dev.sparksft.model.CausalLm;
import dev.sparksft.template.ChatTemplate;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * do_predict with predict_with_generate (the seed's prediction_step and save_predictions): each
 * example's prompt is generated from, the prompt stripped from the output, and the rows
 * {@code {"prompt", "predict", "label"}} written to generated_predictions.jsonl in input order:
 * the prompt decoded with special tokens, predict and label decoded per skip_special_tokens.
 * Metrics (BLEU-4, ROUGE-1/2/L) compare predict and label decoded without special tokens.
 */
public final class Predictor {
    public static final String PREDICTIONS_FILE = "generated_predictions.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final CausalLm model;
    private final SupervisedEncoder encoder;
    private final GeneratingArguments args;
    private final int batchSize;
    private final long seed;

    public Predictor(CausalLm model, SupervisedEncoder encoder, GeneratingArguments args, int batchSize, long seed) {
        this.model = model;
        this.encoder = encoder;
        this.args = args;
        this.batchSize = batchSize;
        this.seed = seed;
    }

    /**
     * One line of generated_predictions.jsonl (prompt, predict, label), with the example's position
     * for ordering and the predict and label texts without special tokens that the metrics compare.
     */
    public record Row(long index, String prompt, String predict, String label, String plainPredict, String plainLabel)
            implements java.io.Serializable {}

    /** An example to predict: the prompt to generate from and the label ids, with the example's position. */
    public record Prompt(long index, int[] prompt, int[] label) implements java.io.Serializable {
        /** A conversation encoded as LLaMA-Factory's UnsupervisedDatasetProcessor does. */
        public static Prompt of(SupervisedEncoder encoder, Conversation c) {
            ChatTemplate.Turn t = encoder.encodeForGeneration(c);
            return new Prompt(c.index(), t.source(), t.target());
        }
    }

    /** The rows of {@code examples}, in their order. */
    public List<Row> predict(List<Conversation> examples) {
        return predictPrompts(examples.stream().map(c -> Prompt.of(encoder, c)).toList());
    }

    /** The rows of encoded examples, in their order. */
    public List<Row> predictPrompts(List<Prompt> examples) {
        Tokenizer tok = encoder.tokenizer();
        List<int[]> prompts = examples.stream().map(Prompt::prompt).toList();
        List<int[]> labels = examples.stream().map(Prompt::label).toList();
        Sampling sampling = new Sampling(args.doSample(), args.temperature(), args.topP(), args.topK(),
                args.repetitionPenalty(), args.maxNewTokens(), seed);
        Generator generator = new Generator(model, sampling, new HashSet<>(encoder.template().stopTokenIds(tok)),
                tok.padId(), batchSize, true);
        List<Generator.Output> outputs = generator.generate(prompts,
                examples.stream().mapToLong(Prompt::index).toArray());
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            int[] generated = outputs.get(i).ids();
            rows.add(new Row(examples.get(i).index(), tok.decode(prompts.get(i), false),
                    tok.decode(generated, args.skipSpecialTokens()), tok.decode(labels.get(i), args.skipSpecialTokens()),
                    tok.decode(generated, true), tok.decode(labels.get(i), true)));
        }
        return rows;
    }

    /** LLaMA-Factory's similarity metrics of the rows (always without special tokens), keys prefixed. */
    public static Map<String, Double> metrics(List<Row> rows, String prefix) {
        Map<String, Double> out = new LinkedHashMap<>();
        Similarity.average(rows.stream().map(Row::plainPredict).toList(), rows.stream().map(Row::plainLabel).toList())
                .forEach((k, v) -> out.put(prefix + k, v));
        return out;
    }

    /** predict_results.json's values: the metrics of the rows, and how long generating them took. */
    public static Map<String, Object> results(List<Row> rows, double seconds) {
        Map<String, Object> results = new LinkedHashMap<>(metrics(rows, "predict_"));
        results.put("predict_runtime", seconds);
        results.put("predict_samples_per_second", rows.size() / seconds);
        return results;
    }

    /**
     * Writes the rows as generated_predictions.jsonl in {@code dir}: UTF-8, non-ASCII as is, one
     * JSON object per line, through a temporary file renamed over the old one (a rerun replaces it).
     */
    public static Path write(Path dir, List<Row> rows) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve(PREDICTIONS_FILE + ".tmp");
        try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            for (Row r : rows) {
                Map<String, String> line = new LinkedHashMap<>();
                line.put("prompt", r.prompt());
                line.put("predict", r.predict());
                line.put("label", r.label());
                w.write(JSON.writeValueAsString(line));
                w.write('\n');
            }
        }
        Path target = dir.resolve(PREDICTIONS_FILE);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }
}
