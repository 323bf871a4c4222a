package dev.sparksft.cli;

import dev.sparksft.config.DataArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.DatasetInfo;
import dev.sparksft.data.DatasetLoader;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.template.ChatTemplate;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The data of a run: the template, the tokenizer as the template prepares it, and the train and
 * eval conversations (eval from eval_dataset, or a seeded val_size split of the train set).
 */
record PreparedData(ChatTemplate template, Tokenizer tokenizer, SupervisedEncoder encoder,
                    List<Conversation> train, List<Conversation> eval) {

    /** @param raw the model's tokenizer (closed by the caller) */
    static PreparedData load(SftConfig config, Tokenizer raw, long seed) throws IOException {
        DataArguments data = config.data();
        SupervisedEncoder encoder = SupervisedEncoder.of(data, raw);
        Path dir = Path.of(data.datasetDir());
        List<Conversation> train = DatasetLoader.load(DatasetInfo.resolve(data.dataset(), dir), data.maxSamples());
        List<Conversation> eval = data.evalDataset().isEmpty() ? List.of()
                : DatasetLoader.load(DatasetInfo.resolve(data.evalDataset(), dir), data.maxSamples());
        if (data.valSize() > 0) {
            // datasets' train_test_split: a float is a fraction rounded up, an integer a count
            boolean[] isEval = data.validationSplit(train.size(), seed);
            List<Conversation> keep = new ArrayList<>();
            List<Conversation> held = new ArrayList<>();
            for (int i = 0; i < train.size(); i++) {
                (isEval[i] ? held : keep).add(train.get(i));
            }
            train = keep;
            eval = held;
        }
        return new PreparedData(encoder.template(), encoder.tokenizer(), encoder, train, eval);
    }

    List<TokenizedExample> encode(List<Conversation> conversations) {
        List<TokenizedExample> out = new ArrayList<>(conversations.size());
        for (int i = 0; i < conversations.size(); i++) {
            TokenizedExample ex = encoder.encode(conversations.get(i));
            out.add(new TokenizedExample(i, ex.inputIds(), ex.labels()));
        }
        return out;
    }
}
