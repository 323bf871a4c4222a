package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.DataArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.run.RunData;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.data.TokenizedFiles;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code sft tokenize CONFIG.yaml [key=value ...]}: renders the train (and eval: eval_dataset or
 * the val_size split) datasets with the chat template and writes {@code <tokenized_path>/train.jsonl}
 * (and {@code eval.jsonl}), one {@code {"input_ids": [...], "labels": [...]}} per example, in
 * dataset order.
 */
public final class TokenizeCommand {

    private TokenizeCommand() {}

    public static void run(SftConfig config) throws IOException {
        DataArguments data = config.data();
        if (data.tokenizedPath() == null) {
            throw new UserError("tokenized_path is required for `tokenize`: the folder to write train.jsonl "
                    + "into (set it in the YAML or pass tokenized_path=DIR)");
        }
        data.requireDataset();
        Path out = Path.of(data.tokenizedPath());
        try (Tokenizer raw = Tokenizer.load(Path.of(config.model().modelNameOrPath()))) {
            RunData prepared = RunData.fromDatasets(config, raw);
            Files.createDirectories(out);
            write(prepared.encoder(), prepared.train(), out.resolve("train.jsonl"));
            if (!prepared.eval().isEmpty()) {
                write(prepared.encoder(), prepared.eval(), out.resolve("eval.jsonl"));
            }
        }
    }

    private static void write(SupervisedEncoder encoder, List<Conversation> conversations, Path file) throws IOException {
        List<TokenizedExample> examples = new ArrayList<>(conversations.size());
        for (int i = 0; i < conversations.size(); i++) {
            examples.add(encoder.encode(conversations.get(i)));
        }
        TokenizedFiles.write(file, examples);
    }
}
