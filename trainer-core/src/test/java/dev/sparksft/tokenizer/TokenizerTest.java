package dev.sparksft.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
    static final List<String> CHATML = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");

    @Test
    void bytesAreTheirOwnIdsAndSpecialTokensAreSplitOut(@TempDir Path dir) throws Exception {
        ByteLevelBpe.train("", 0, CHATML).write(dir, new Tokenizer.SpecialTokens(null, "<|im_end|>", "<|endoftext|>"), "");
        try (Tokenizer tok = Tokenizer.load(dir)) {
            int start = 257;
            int end = 258;
            assertArrayEquals(new int[] {start, 'u', 's', 'e', 'r', '\n', 'h', 'i', end}, tok.encode("<|im_start|>user\nhi<|im_end|>"));
            assertArrayEquals(new int[] {0xC3, 0xA9}, tok.encode("é"), "non-ASCII text is UTF-8 bytes");
            assertEquals(259, tok.vocabSize());
            assertEquals(end, tok.eosId());
            assertEquals(256, tok.padId());
            assertEquals(null, tok.bosId());
            int[] ids = tok.encode("<|im_start|>a b<|im_end|>");
            assertEquals("<|im_start|>a b<|im_end|>", tok.decode(ids, false));
            assertEquals("a b", tok.decode(ids, true));
        }
    }

    @Test
    void learnedMergesShortenFrequentWords(@TempDir Path dir) throws Exception {
        ByteLevelBpe bpe = ByteLevelBpe.train("the cat the hat the mat the bat", 10, CHATML);
        bpe.write(dir, new Tokenizer.SpecialTokens(null, "<|im_end|>", null), "");
        try (Tokenizer tok = Tokenizer.load(dir)) {
            assertTrue(tok.encode(" the").length < 4, "' the' should be merged");
            assertEquals(" the cat", tok.decode(tok.encode(" the cat"), true));
            assertEquals(bpe.vocabSize(), tok.vocabSize());
        }
    }

    @Test
    void missingTokenizerFileNamesTheFix(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("has no tokenizer.json"), e.getMessage());
    }

    @Test
    void specialTokenMissingFromVocabularyIsRejected(@TempDir Path dir) throws Exception {
        ByteLevelBpe.train("", 0, CHATML).write(dir, new Tokenizer.SpecialTokens("<s>", "<|im_end|>", null), "");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("'<s>'"), e.getMessage());
    }
}
