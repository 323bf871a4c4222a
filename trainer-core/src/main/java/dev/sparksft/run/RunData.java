package dev.sparksft.run;

import dev.sparksft.config.DataArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.LocalDatasetSource;
import dev.sparksft.data.LocalDatasets;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.template.ChatTemplate;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.data.TokenizedFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The data of a run read in one process: the template, the tokenizer as the template prepares
 * it, and the train and eval conversations (eval from eval_dataset, or the seeded val_size
 * split of the train set). Spark's reader gives the same examples from the same rules.
 */
public record RunData(ChatTemplate template, Tokenizer tokenizer, SupervisedEncoder encoder,
                      List<Conversation> train, List<Conversation> eval, DataArguments args, Saved saved) {
    private static final Logger LOG = LoggerFactory.getLogger(RunData.class);

    /** Examples read back from tokenized_path (null when the run tokenizes its datasets). */
    public record Saved(List<TokenizedExample> train, List<TokenizedExample> eval) {}

    /**
     * Whether {@code tokenized_path} holds a tokenized training set, which a run then trains on
     * instead of its datasets (LLaMA-Factory: "Loading dataset from disk will ignore other data
     * arguments").
     */
    public static boolean hasTokenized(DataArguments data) {
        return data.tokenizedPath() != null && Files.isRegularFile(Path.of(data.tokenizedPath(), TRAIN_FILE));
    }

    static final String TRAIN_FILE = "train.jsonl";
    static final String EVAL_FILE = "eval.jsonl";

    /**
     * The run's data: the tokenized set in tokenized_path when it holds one, else its datasets.
     *
     * @param raw the model's tokenizer (closed by the caller)
     */
    public static RunData load(SftConfig config, Tokenizer raw) throws IOException {
        DataArguments data = config.data();
        SupervisedEncoder encoder = SupervisedEncoder.of(data, config.model(), raw);
        if (hasTokenized(data)) {
            Path dir = Path.of(data.tokenizedPath());
            LOG.warn("loading the tokenized dataset from tokenized_path {}: the other data arguments (dataset, "
                    + "eval_dataset, cutoff_len, template rendering, packing) are not applied again", dir);
            Path evalFile = dir.resolve(EVAL_FILE);
            Saved saved = new Saved(TokenizedFiles.read(dir.resolve(TRAIN_FILE)),
                    Files.isRegularFile(evalFile) ? TokenizedFiles.read(evalFile) : List.of());
            LOG.info("loaded {} training and {} eval examples from {}", saved.train().size(), saved.eval().size(), dir);
            return new RunData(encoder.template(), encoder.tokenizer(), encoder, List.of(), List.of(), data, saved);
        }
        return fromDatasets(config, encoder);
    }

    /** The run's datasets read and split, whatever tokenized_path holds (the tokenize command). */
    public static RunData fromDatasets(SftConfig config, Tokenizer raw) throws IOException {
        return fromDatasets(config, SupervisedEncoder.of(config.data(), config.model(), raw));
    }

    private static RunData fromDatasets(SftConfig config, SupervisedEncoder encoder) throws IOException {
        DataArguments data = config.data();
        LocalDatasetSource source = new LocalDatasetSource(Path.of(data.datasetDir()));
        boolean skip = config.distributed().skipBadRows();
        List<Conversation> train = data.dataset().isEmpty() ? List.of()
                : LocalDatasets.load(data.dataset(), source, "dataset", data.maxSamples(), skip,
                        data.mediaDir());
        List<Conversation> eval = data.evalDataset().isEmpty() ? List.of()
                : LocalDatasets.load(data.evalDataset(), source, "eval_dataset", data.maxSamples(), skip,
                        data.mediaDir());
        if (data.valSize() > 0) {
            // datasets' train_test_split: a float is a fraction rounded up, an integer a count
            boolean[] isEval = data.validationSplit(train.size(), config.training().seed());
            List<Conversation> keep = new ArrayList<>();
            List<Conversation> held = new ArrayList<>();
            for (int i = 0; i < train.size(); i++) {
                (isEval[i] ? held : keep).add(train.get(i));
            }
            train = keep;
            eval = held;
        }
        return new RunData(encoder.template(), encoder.tokenizer(), encoder, train, eval, data, null);
    }

    /** The conversations tokenized, numbered 0.. in their order. */
    public List<TokenizedExample> encode(List<Conversation> conversations) {
        List<TokenizedExample> out = new ArrayList<>(conversations.size());
        for (int i = 0; i < conversations.size(); i++) {
            TokenizedExample ex = encoder.encode(conversations.get(i));
            out.add(ex.withIndex(i));
        }
        return out;
    }

    /** The eval examples: tokenized, or as read from tokenized_path. */
    public List<TokenizedExample> evalExamples() {
        return saved != null ? saved.eval() : encode(eval);
    }

    /**
     * The predict set's conversations (generation renders prompts from them, which a tokenized set
     * does not keep).
     */
    public List<Conversation> predictSet() {
        if (saved != null) {
            throw new dev.sparksft.UserError("do_predict generates from the eval set's conversations, which "
                    + "tokenized_path does not keep: predict without tokenized_path (set eval_dataset)");
        }
        return eval;
    }

    /**
     * Writes the tokenized train (and eval) examples to tokenized_path when it is set and holds
     * none yet, as LLaMA-Factory saves its processed dataset there for the next run.
     */
    public void saveTokenized(List<TokenizedExample> trainExamples) throws IOException {
        if (saved != null || args.tokenizedPath() == null) {
            return;
        }
        Path dir = Files.createDirectories(Path.of(args.tokenizedPath()));
        TokenizedFiles.write(dir.resolve(TRAIN_FILE), trainExamples);
        if (!eval.isEmpty()) {
            TokenizedFiles.write(dir.resolve(EVAL_FILE), encode(eval));
        }
        LOG.info("tokenized dataset saved at {}: a run with tokenized_path: {} trains on it without tokenizing", dir, dir);
    }

    /** The training examples: tokenized, and packed into cutoff_len sequences with packing. */
    public List<TokenizedExample> trainExamples() {
        if (saved != null) {
            return saved.train();
        }
        List<TokenizedExample> examples = encode(train);
        if (!args.packing() || examples.isEmpty()) {
            return examples;
        }
        List<TokenizedExample> packed = Packing.pack(examples, args.cutoffLen(), args.neatPacking());
        LOG.info("packing: {} examples into {} sequences of at most {} tokens{}", examples.size(), packed.size(),
                args.cutoffLen(), args.neatPacking() ? " (neat: attention within each)" : "");
        return packed;
    }
}
