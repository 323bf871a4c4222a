package dev.sparksft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.ModelConfig;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A user's malformed JSON file is one line naming the file, line and column: no parser stack trace. */
class JsonFilesTest {
    @Test
    void malformedJsonNamesFileLineAndColumn(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("config.json"), "{\n  \"hidden_size\": 64,,\n}\n");
        UserError e = assertThrows(UserError.class, () -> JsonFiles.read(f));
        assertTrue(e.getMessage().startsWith(f + " is not valid JSON (line 2, column 21): Unexpected character (','"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("; repair it or restore it from where it came from"), e.getMessage());
    }

    @Test
    void truncatedJsonKeepsTheLineOfTheOpenObjectWithoutJacksonsSourceNoise(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("tokenizer.json"), "{\"version\": \"1.0\", \"model\": {\n");
        UserError e = assertThrows(UserError.class, () -> JsonFiles.read(f));
        assertTrue(e.getMessage().contains("expected close marker for Object (start marker at [line: 1, column: 29])"),
                e.getMessage());
        assertFalse(e.getMessage().contains("REDACTED"), e.getMessage());
        assertEquals(f + " is empty; it must hold a JSON object: restore it from where it came from",
                assertThrows(UserError.class, () -> JsonFiles.read(Files.writeString(dir.resolve("tokenizer.json"), "")))
                        .getMessage());
    }

    @Test
    void modelAndTokenizerFilesAreReadThroughIt(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\",}");
        assertTrue(assertThrows(UserError.class, () -> ModelConfig.load(dir)).getMessage()
                .startsWith(dir.resolve("config.json") + " is not valid JSON (line 1, column 24)"));
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": ");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        assertTrue(assertThrows(UserError.class, () -> Tokenizer.load(dir)).getMessage()
                .startsWith(dir.resolve("tokenizer.json") + " is not valid JSON"));
    }
}
