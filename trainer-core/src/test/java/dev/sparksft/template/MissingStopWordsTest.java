package dev.sparksft.template;

import static dev.sparksft.template.TestTokenizers.BOS;
import static dev.sparksft.template.TestTokenizers.END_HEADER;
import static dev.sparksft.template.TestTokenizers.EOT;
import static dev.sparksft.template.TestTokenizers.START_HEADER;
import static dev.sparksft.template.TestTokenizers.ids;
import static dev.sparksft.template.TestTokenizers.masked;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.Message;
import dev.sparksft.data.Role;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.tokenizer.ByteLevelBpe;
import dev.sparksft.tokenizer.NewTokens;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A template's stop words the tokenizer lacks are added as LLaMA-Factory's fix_special_tokens adds
 * them (special tokens with new ids), and add_tokens / add_special_tokens before them as its
 * patch_tokenizer does. Expected ids are written by hand: the test tokenizer's bytes are their own
 * ids, then its special tokens (see {@link TestTokenizers}).
 */
class MissingStopWordsTest {
    /** LLaMA-Factory's data/identity.json, first row (alpaca: instruction "hi", input ""). */
    static final String IDENTITY_OUTPUT = "Hello! I am {{name}}, an AI assistant developed by {{author}}. "
            + "How can I assist you today?";

    /** A Llama 3.0 tokenizer in miniature: the test tokenizer without <|eom_id|>, so ids stop at <|eot_id|> (263). */
    static Tokenizer llama30(Path dir) throws Exception {
        List<String> specials = TestTokenizers.SPECIALS.subList(0, TestTokenizers.SPECIALS.indexOf("<|eom_id|>"));
        ByteLevelBpe.train("", 0, specials).write(dir, new Tokenizer.SpecialTokens("<s>", "</s>", null), "");
        return Tokenizer.load(dir);
    }

    static SftConfig config(Path dir, String extra) throws Exception {
        return SftConfig.load(Files.writeString(dir.resolve("run.yaml"), "model_name_or_path: " + dir
                + "\ntemplate: llama3\ndataset: identity\ncutoff_len: 1024\n" + extra), List.of());
    }

    static Conversation row(String instruction, String output) {
        return new Conversation(0, "identity.json row 1", List.of(new Message(Role.USER, instruction)),
                List.of(new Message(Role.ASSISTANT, output)), "", "");
    }

    @Test
    void llama3OverALlama30TokenizerAddsEomIdWithTheNextId(@TempDir Path dir) throws Exception {
        try (Tokenizer raw = llama30(dir)) {
            SftConfig c = config(dir, "");
            SupervisedEncoder encoder = SupervisedEncoder.of(c.data(), c.model(), raw);
            Tokenizer tok = encoder.tokenizer();
            int eom = 264;
            assertEquals(eom, tok.tokenId("<|eom_id|>").orElseThrow(), "added after the highest id, <|eot_id|> 263");
            assertEquals(List.of("<|eom_id|>"), tok.addedTokens(), "<|eot_id|>, the new eos, was a token already");
            assertEquals(EOT, tok.eosId());
            assertEquals(EOT, tok.padId(), "pad defaults to eos");
            assertEquals(List.of(EOT, eom), encoder.template().stopTokenIds(tok), "generation stops at both stop words");
            assertEquals(new NewTokens(265, 265, false, true, List.of()), encoder.newTokens());

            TokenizedExample ex = encoder.encode(row("hi", IDENTITY_OUTPUT));
            int[] prompt = ids(BOS, START_HEADER, "user", END_HEADER, "\n\nhi", EOT, START_HEADER, "assistant",
                    END_HEADER, "\n\n");
            int[] response = ids(IDENTITY_OUTPUT, EOT);
            assertArrayEquals(ChatTemplate.concat(prompt, response), ex.inputIds());
            assertArrayEquals(ChatTemplate.concat(masked(prompt.length), response), ex.labels());

            TokenizedExample withEom = encoder.encode(row("hi", "Calling the tool.<|eom_id|>"));
            assertArrayEquals(ChatTemplate.concat(prompt, ids("Calling the tool.", eom, EOT)), withEom.inputIds(),
                    "<|eom_id|> in text is the one new token, as a special added token is matched");
        }
    }

    @Test
    void chatmlOverATokenizerWithoutItsTokensAddsBoth(@TempDir Path dir) throws Exception {
        ByteLevelBpe.train("", 0, List.of("<|endoftext|>")).write(dir,
                new Tokenizer.SpecialTokens(null, "<|endoftext|>", null), "");
        try (Tokenizer plain = Tokenizer.load(dir)) {
            ChatTemplate chatml = Templates.get("chatml");
            Tokenizer tok = chatml.prepare(plain);
            int imEnd = 257;
            int imStart = 258;
            assertEquals(List.of("<|im_end|>", "<|im_start|>"), tok.addedTokens(), "eos first, then the other stop word");
            assertEquals(imEnd, tok.eosId(), "replace_eos: <|im_end|> is eos");
            assertEquals(imEnd, tok.padId());
            TokenizedExample ex = new SupervisedEncoder(chatml, tok, new SupervisedEncoder.Options(1024, false, false,
                    null, false)).encode(row("hi", "Hello"));
            int[] prompt = ids(imStart, "user\nhi", imEnd, "\n", imStart, "assistant\n");
            assertArrayEquals(ChatTemplate.concat(prompt, ids("Hello", imEnd, "\n")), ex.inputIds());
        }
    }

    @Test
    void addTokensComeFirstAndTurnResizeVocabOn(@TempDir Path dir) throws Exception {
        try (Tokenizer raw = llama30(dir)) {
            SftConfig c = config(dir, "add_special_tokens: \"<tool>, <call>\"\nadd_tokens: <|eot_id|>\n");
            assertEquals(List.of("<tool>", "<call>"), c.model().specialTokensToAdd(), "split at commas and stripped");
            SupervisedEncoder encoder = SupervisedEncoder.of(c.data(), c.model(), raw);
            Tokenizer tok = encoder.tokenizer();
            assertEquals(264, tok.tokenId("<tool>").orElseThrow());
            assertEquals(265, tok.tokenId("<call>").orElseThrow());
            assertEquals(266, tok.tokenId("<|eom_id|>").orElseThrow(), "the template's stop word comes after the keys'");
            // add_tokens re-adds <|eot_id|> as a normalized, non-special token (new flags: counted, id kept); making it
            // eos adds it back as a special token (the flags change again: counted again), as tokenizers counts
            assertEquals(List.of("<|eot_id|>", "<tool>", "<call>", "<|eot_id|>", "<|eom_id|>"), tok.addedTokens());
            assertArrayEquals(new int[] {EOT}, tok.encode("<|eot_id|>"));
            NewTokens added = encoder.newTokens();
            assertTrue(added.resizeVocab(), "add_special_tokens added tokens: resize_vocab turned on");
            assertEquals(List.of(EOT, 264, 265), added.initIds(), "every key token's row is initialised, as LLaMA-Factory does");
            assertEquals(267, added.length());
        }
    }

    @Test
    void tokensAlreadyThereChangeNothing(@TempDir Path dir) throws Exception {
        try (Tokenizer raw = TestTokenizers.bytes(dir)) {
            SftConfig c = config(dir, "add_special_tokens: <|eot_id|>\n");
            SupervisedEncoder encoder = SupervisedEncoder.of(c.data(), c.model(), raw);
            assertEquals(List.of(), encoder.tokenizer().addedTokens());
            assertFalse(encoder.newTokens().resizeVocab(), "nothing was added: resize_vocab stays false");
            assertFalse(encoder.newTokens().templateAdded());
        }
    }
}
