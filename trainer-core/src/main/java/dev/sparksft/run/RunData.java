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
import java.io.IOException;
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
                      List<Conversation> train, List<Conversation> eval, DataArguments args) {
    private static final Logger LOG = LoggerFactory.getLogger(RunData.class);

    /** @param raw the model's tokenizer (closed by the caller) */
    public static RunData load(SftConfig config, Tokenizer raw) throws IOException {
        DataArguments data = config.data();
        SupervisedEncoder encoder = SupervisedEncoder.of(data, raw);
        LocalDatasetSource source = new LocalDatasetSource(Path.of(data.datasetDir()));
        boolean skip = config.distributed().skipBadRows();
        List<Conversation> train = data.dataset().isEmpty() ? List.of()
                : LocalDatasets.load(data.dataset(), source, "dataset", data.maxSamples(), skip);
        List<Conversation> eval = data.evalDataset().isEmpty() ? List.of()
                : LocalDatasets.load(data.evalDataset(), source, "eval_dataset", data.maxSamples(), skip);
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
        return new RunData(encoder.template(), encoder.tokenizer(), encoder, train, eval, data);
    }

    /** The conversations tokenized, numbered 0.. in their order. */
    public List<TokenizedExample> encode(List<Conversation> conversations) {
        List<TokenizedExample> out = new ArrayList<>(conversations.size());
        for (int i = 0; i < conversations.size(); i++) {
            TokenizedExample ex = encoder.encode(conversations.get(i));
            out.add(new TokenizedExample(i, ex.inputIds(), ex.labels()));
        }
        return out;
    }

    /** The training examples: tokenized, and packed into cutoff_len sequences with packing. */
    public List<TokenizedExample> trainExamples() {
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
