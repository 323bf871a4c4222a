package dev.sparksft.cli;

import dev.sparksft.UserError;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.DataArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.run.RunData;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code sft tokenize CONFIG.yaml [key=value ...]}: renders the train (and eval: eval_dataset or
 * the val_size split) datasets with the chat template and writes {@code <tokenized_path>/train.jsonl}
 * (and {@code eval.jsonl}), one {@code {"input_ids": [...], "labels": [...]}} per example, in
 * dataset order.
 */
public final class TokenizeCommand {
    private static final Logger LOG = LoggerFactory.getLogger(TokenizeCommand.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int PROGRESS_EVERY = 10_000;

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
            RunData prepared = RunData.load(config, raw);
            Files.createDirectories(out);
            write(prepared.encoder(), prepared.train(), out.resolve("train.jsonl"));
            if (!prepared.eval().isEmpty()) {
                write(prepared.encoder(), prepared.eval(), out.resolve("eval.jsonl"));
            }
        }
    }

    private static void write(SupervisedEncoder encoder, List<Conversation> conversations, Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        long numTokens = 0;
        long numLabels = 0;
        int longest = 0;
        long start = System.nanoTime();
        try (OutputStream os = Files.newOutputStream(tmp);
             JsonGenerator g = JSON.getFactory().createGenerator(os)) {
            g.setRootValueSeparator(null);
            for (int i = 0; i < conversations.size(); i++) {
                TokenizedExample ex = encoder.encode(conversations.get(i));
                g.writeStartObject();
                g.writeFieldName("input_ids");
                g.writeArray(ex.inputIds(), 0, ex.length());
                g.writeFieldName("labels");
                g.writeArray(ex.labels(), 0, ex.length());
                g.writeEndObject();
                g.writeRaw('\n');
                numTokens += ex.length();
                numLabels += java.util.Arrays.stream(ex.labels()).filter(l -> l != TokenizedExample.IGNORE_INDEX).count();
                longest = Math.max(longest, ex.length());
                if ((i + 1) % PROGRESS_EVERY == 0) {
                    LOG.info("tokenized {}/{} examples ({}/s)", i + 1, conversations.size(),
                            (long) ((i + 1) / ((System.nanoTime() - start) / 1e9)));
                }
            }
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        LOG.info("wrote {}: {} examples, {} tokens ({} labelled), longest {}", file, conversations.size(), numTokens,
                numLabels, longest);
    }
}
