package dev.sparksft.generate;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.GeneratingArguments;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.train.BatchImages;
import dev.sparksft.metrics.Similarity;
import dev.sparksft.model.CausalLm;
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
    private final BatchImages images;

    public Predictor(CausalLm model, SupervisedEncoder encoder, GeneratingArguments args, int batchSize, long seed) {
        this(model, encoder, args, batchSize, seed, BatchImages.NONE);
    }

    /** A predictor whose prompts' images {@code images} reads and processes (a vision-language model). */
    public Predictor(CausalLm model, SupervisedEncoder encoder, GeneratingArguments args, int batchSize, long seed,
                     BatchImages images) {
        this.images = images;
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

    /**
     * An example to predict: the prompt to generate from and the label ids, with the example's
     * position, and the prompt's images (resolved paths and grids, in token order; empty for text).
     */
    public record Prompt(long index, int[] prompt, int[] label, List<TokenizedExample.Image> images)
            implements java.io.Serializable {
        public Prompt {
            images = images == null ? List.of() : List.copyOf(images);
        }

        /** A text prompt. */
        public Prompt(long index, int[] prompt, int[] label) {
            this(index, prompt, label, List.of());
        }

        /** A conversation encoded as LLaMA-Factory's UnsupervisedDatasetProcessor does. */
        public static Prompt of(SupervisedEncoder encoder, Conversation c) {
            SupervisedEncoder.Prompt p = encoder.encodePrompt(c);
            return new Prompt(c.index(), p.turn().source(), p.turn().target(), p.images());
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
                examples.stream().mapToLong(Prompt::index).toArray(), rows -> images.of(
                        rows.stream().map(i -> examples.get(i).index()).toList(),
                        rows.stream().map(i -> examples.get(i).images()).toList()));
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            int[] generated = outputs.get(i).ids();
            rows.add(new Row(examples.get(i).index(), promptText(tok.decode(prompts.get(i), false)),
                    tok.decode(generated, args.skipSpecialTokens()), tok.decode(labels.get(i), args.skipSpecialTokens()),
                    tok.decode(generated, true), tok.decode(labels.get(i), true)));
        }
        return rows;
    }

    /**
     * The prompt field: the prompt decoded with its special tokens, each image span (vision start,
     * its image pads, vision end) written back as the {@code <image>} placeholder it came from,
     * rather than hundreds of pad tokens.
     */
    private String promptText(String decoded) {
        if (encoder.imageTokens() == null) {
            return decoded;
        }
        dev.sparksft.template.MmPlugin p = encoder.imageTokens().plugin();
        return decoded.replaceAll(java.util.regex.Pattern.quote(p.visionBos()) + "(?:" + java.util.regex.Pattern.quote(
                p.imageToken()) + ")+" + java.util.regex.Pattern.quote(p.visionEos()), Conversation.IMAGE_PLACEHOLDER);
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
