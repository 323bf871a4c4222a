package dev.sparksft.data;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tokenized examples on disk ({@code tokenized_path}): JSON Lines of
 * {@code {"input_ids": [...], "labels": [...]}}, labels -100 where masked, plus
 * {@code "segment_lengths"} and {@code "isolated"} for a packed row, so that a packed set reads
 * back with its position ids and attention as it was packed, and, for an example with images,
 * {@code "images"} (their resolved paths, in token order) and {@code "image_grid_thw"} (each one's
 * [t, h, w] patch grid), so that a tokenized multimodal set trains without its dataset. Written to
 * a temporary name and renamed, so a file is whole or absent.
 */
public final class TokenizedFiles {
    private static final Logger LOG = LoggerFactory.getLogger(TokenizedFiles.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int PROGRESS_EVERY = 10_000;

    private TokenizedFiles() {}

    public static void write(Path file, List<TokenizedExample> examples) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        long numTokens = 0;
        long numLabels = 0;
        int longest = 0;
        try (OutputStream os = Files.newOutputStream(tmp);
             JsonGenerator g = JSON.getFactory().createGenerator(os)) {
            g.setRootValueSeparator(null);
            for (int i = 0; i < examples.size(); i++) {
                TokenizedExample ex = examples.get(i);
                g.writeStartObject();
                g.writeFieldName("input_ids");
                g.writeArray(ex.inputIds(), 0, ex.length());
                g.writeFieldName("labels");
                g.writeArray(ex.labels(), 0, ex.length());
                if (ex.segmentLengths().length > 1 || ex.isolated()) {
                    g.writeFieldName("segment_lengths");
                    g.writeArray(ex.segmentLengths(), 0, ex.segmentLengths().length);
                    g.writeBooleanField("isolated", ex.isolated());
                }
                if (!ex.images().isEmpty()) {
                    g.writeArrayFieldStart("images");
                    for (TokenizedExample.Image image : ex.images()) {
                        g.writeString(image.path());
                    }
                    g.writeEndArray();
                    g.writeArrayFieldStart("image_grid_thw");
                    for (TokenizedExample.Image image : ex.images()) {
                        g.writeArray(new int[] {image.gridT(), image.gridH(), image.gridW()}, 0, 3);
                    }
                    g.writeEndArray();
                }
                g.writeEndObject();
                g.writeRaw('\n');
                numTokens += ex.length();
                numLabels += java.util.Arrays.stream(ex.labels()).filter(l -> l != TokenizedExample.IGNORE_INDEX).count();
                longest = Math.max(longest, ex.length());
                if ((i + 1) % PROGRESS_EVERY == 0) {
                    LOG.info("wrote {}/{} examples to {}", i + 1, examples.size(), file);
                }
            }
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        LOG.info("wrote {}: {} examples, {} tokens ({} labelled), longest {}", file, examples.size(), numTokens,
                numLabels, longest);
    }

    /** The examples of {@code file}, numbered 0.. in file order; a malformed line is named with its number. */
    public static List<TokenizedExample> read(Path file) throws IOException {
        List<TokenizedExample> out = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            int lineNo = 0;
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                out.add(parse(file, lineNo, line, out.size()));
            }
        }
        return out;
    }

    private static TokenizedExample parse(Path file, int lineNo, String line, long index) {
        String where = "tokenized file " + file + " line " + lineNo;
        JsonNode row;
        try {
            row = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new UserError(where + " is not valid JSON: " + e.getOriginalMessage()
                    + "; write it again with `scripts/sft tokenize` or delete tokenized_path");
        }
        int[] ids = ints(row.get("input_ids"), where, "input_ids");
        int[] labels = ints(row.get("labels"), where, "labels");
        int[] segments = row.has("segment_lengths") ? ints(row.get("segment_lengths"), where, "segment_lengths")
                : new int[] {ids.length};
        if (labels.length != ids.length || java.util.Arrays.stream(segments).sum() != ids.length) {
            throw new UserError(where + ": input_ids, labels and segment_lengths disagree in length ("
                    + ids.length + ", " + labels.length + ", " + java.util.Arrays.stream(segments).sum() + ")");
        }
        return new TokenizedExample(index, ids, labels, segments, row.path("isolated").asBoolean(false),
                images(row, where));
    }

    /** "images" and "image_grid_thw", one path and one [t, h, w] per image; none when absent. */
    private static List<TokenizedExample.Image> images(JsonNode row, String where) {
        JsonNode paths = row.get("images");
        if (paths == null || paths.isNull()) {
            return List.of();
        }
        JsonNode grids = row.get("image_grid_thw");
        if (!paths.isArray() || grids == null || !grids.isArray() || grids.size() != paths.size()) {
            throw new UserError(where + ": \"images\" must be a list of paths with one [t, h, w] per image in "
                    + "\"image_grid_thw\"; write it again with `scripts/sft tokenize`");
        }
        List<TokenizedExample.Image> out = new ArrayList<>();
        for (int i = 0; i < paths.size(); i++) {
            int[] thw = ints(grids.get(i), where, "image_grid_thw[" + i + "]");
            if (!paths.get(i).isTextual() || thw.length != 3) {
                throw new UserError(where + ": image " + i + " needs a path and a [t, h, w] grid, got "
                        + paths.get(i) + " and " + grids.get(i));
            }
            out.add(new TokenizedExample.Image(paths.get(i).asText(), thw[0], thw[1], thw[2]));
        }
        return out;
    }

    private static int[] ints(JsonNode array, String where, String key) {
        if (array == null || !array.isArray()) {
            throw new UserError(where + " has no " + key + " array");
        }
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            if (!array.get(i).isIntegralNumber()) {
                throw new UserError(where + ": " + key + "[" + i + "] is " + array.get(i) + ", not an integer");
            }
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
