package dev.sparksft.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tokens added as transformers adds them to a fast tokenizer (add_tokens / add_special_tokens):
 * ids, flags, how text containing them is split, and the files save_pretrained writes. The
 * tokenizer is made in the test: bytes are ids 0..255, then three special tokens (256..258).
 */
class AddedTokensTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Tokenizer chatml(Path dir) throws Exception {
        ByteLevelBpe.train("", 0, TokenizerTest.CHATML).write(dir, new Tokenizer.SpecialTokens(null, "<|im_end|>",
                "<|endoftext|>"), "");
        return Tokenizer.load(dir);
    }

    @Test
    void newTokensGetTheNextIdsAndAreMatchedWholeInText(@TempDir Path dir) throws Exception {
        try (Tokenizer raw = chatml(dir)) {
            assertEquals(259, raw.length());
            Tokenizer t = raw.withAddedTokens(List.of("<|eom_id|>", "<|im_end|>"), true);
            assertEquals(List.of("<|eom_id|>"), t.addedTokens(), "<|im_end|> is already added with the same flags");
            assertEquals(259, t.tokenId("<|eom_id|>").orElseThrow(), "the next id after the highest added one");
            assertEquals(260, t.length());
            assertArrayEquals(new int[] {'a', 259, ' ', 'b'}, t.encode("a<|eom_id|> b"), "one token, not its bytes");
            assertEquals("a b", t.decode(t.encode("a<|eom_id|> b"), true), "special: skipped when decoding");
            assertArrayEquals(new int[] {'a', '<', '|'}, raw.encode("a<|"), "the tokenizer it came from is unchanged");
            assertEquals(10, raw.encode("<|eom_id|>").length, "... and still spells <|eom_id|> in bytes");

            Tokenizer plain = t.withAddedTokens(List.of("<tool>", "a", ""), false);
            assertEquals(List.of("<|eom_id|>", "<tool>", "a"), plain.addedTokens(),
                    "a vocabulary token counts as added (it becomes an added token); an empty one is ignored");
            assertEquals(260, plain.tokenId("<tool>").orElseThrow());
            assertEquals('a', plain.tokenId("a").orElseThrow(), "a vocabulary token keeps its id");
            assertEquals(261, plain.length(), "only <tool> is a new token string");
            assertArrayEquals(new int[] {'x', 260, 'y'}, plain.encode("x<tool>y"));
            assertEquals("x<tool>y", plain.decode(plain.encode("x<tool>y"), true), "not special: kept when decoding");
        }
    }

    @Test
    void savedFilesHoldTheNewTokensAsSavePretrainedWritesThem(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out");
        java.nio.file.Files.createDirectories(out);
        try (Tokenizer raw = chatml(dir.resolve("in"))) {
            Tokenizer t = raw.withAddedTokens(List.of("<tool>"), false).withAdditionalSpecialTokens(List.of("<|eom_id|>"))
                    .withSpecialTokens(new Tokenizer.SpecialTokens(null, "<|eom_id|>", "<|endoftext|>"));
            t.save(out);
            JsonNode tok = JSON.readTree(out.resolve("tokenizer.json").toFile());
            JsonNode last = tok.get("added_tokens").get(4);
            assertEquals("{\"id\":260,\"content\":\"<|eom_id|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                    + "\"normalized\":false,\"special\":true}", last.toString());
            assertEquals("{\"id\":259,\"content\":\"<tool>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                    + "\"normalized\":true,\"special\":false}", tok.get("added_tokens").get(3).toString(),
                    "add_tokens: normalized, not special");
            JsonNode cfg = JSON.readTree(out.resolve("tokenizer_config.json").toFile());
            assertEquals("<|eom_id|>", cfg.get("added_tokens_decoder").get("260").get("content").asText());
            assertTrue(cfg.get("added_tokens_decoder").get("260").get("special").asBoolean());
            List<String> extra = new ArrayList<>();
            cfg.get("additional_special_tokens").forEach(n -> extra.add(n.asText()));
            assertEquals(List.of("<|im_start|>", "<|eom_id|>"), extra, "appended to the list ByteLevelBpe wrote");
            assertEquals("<|eom_id|>", cfg.get("eos_token").asText());
            try (Tokenizer back = Tokenizer.load(out)) {
                assertArrayEquals(t.encode("<|im_start|>a<tool><|eom_id|>"), back.encode("<|im_start|>a<tool><|eom_id|>"));
                assertArrayEquals(new int[] {257, 'a', 259, 260}, back.encode("<|im_start|>a<tool><|eom_id|>"));
                assertEquals(260, back.eosId());
                assertFalse(back.decode(new int[] {260}, true).contains("eom"));
            }
        }
    }
}
