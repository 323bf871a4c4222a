package dev.sparksft;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The JSON files a user hands in (a model's config.json and tokenizer files, an adapter's
 * config, a shard index, dataset_info.json): a malformed one is the user's to fix, so it is a
 * {@link UserError} naming the file, the line and column, and what the parser expected, never a
 * parser stack trace. A missing file is the caller's to explain (it knows what the file is for).
 */
public final class JsonFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFiles() {}

    /** The JSON of {@code file}; {@code NoSuchFileException} when there is none. */
    public static JsonNode read(Path file) throws IOException {
        return parse(file.toString(), Files.newInputStream(file));
    }

    /** The JSON of {@code in} (closed here), read from {@code file}, which the error names. */
    public static JsonNode parse(String file, InputStream in) throws IOException {
        try (in) {
            JsonNode root = JSON.readTree(in);
            if (root == null || root.isMissingNode()) {
                throw new UserError(file + " is empty; it must hold a JSON object: restore it from where it came from");
            }
            return root;
        } catch (JsonProcessingException e) {
            throw malformed(file, e);
        }
    }

    /**
     * What a Jackson parser (JSON or YAML) expected, without the source noise of its nested
     * locations ("start marker at [Source: REDACTED (...); line: 1, ...]" keeps the line only).
     */
    public static String parserMessage(JsonProcessingException e) {
        return e.getOriginalMessage().replaceAll("\\[Source: [^;\\]]*; ", "[");
    }

    /** "file is not valid JSON (line L, column C): what the parser expected; ..." */
    public static UserError malformed(String file, JsonProcessingException e) {
        JsonLocation at = e.getLocation();
        String where = at == null || at.getLineNr() < 1 ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        return new UserError(file + " is not valid JSON" + where + ": " + parserMessage(e)
                + "; repair it or restore it from where it came from");
    }
}
