package dev.sparksft.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads the rows of a JSON file (one array of objects) or a JSON Lines file (one object per
 * line), or of every such file in a directory. Each row keeps where it came from, so that every
 * later error can point at the file and line.
 */
public final class JsonRecords {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonRecords() {}

    /** A row and its location, "data.jsonl line 3" or "data.json [2]". */
    public record Row(JsonNode value, String source) {}

    public static List<Row> read(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            List<Row> rows = new ArrayList<>();
            try (Stream<Path> files = Files.list(path)) {
                for (Path f : files.filter(JsonRecords::isJsonFile).sorted().toList()) {
                    rows.addAll(readFile(f));
                }
            }
            return rows;
        }
        if (!Files.isRegularFile(path)) {
            throw new IllegalArgumentException("dataset file " + path + " does not exist");
        }
        return readFile(path);
    }

    private static boolean isJsonFile(Path p) {
        String n = p.getFileName().toString();
        return n.endsWith(".json") || n.endsWith(".jsonl");
    }

    private static List<Row> readFile(Path file) throws IOException {
        String name = file.getFileName().toString();
        if (!isJsonFile(file)) {
            throw new IllegalArgumentException("dataset file " + file + " is neither .json nor .jsonl (Parquet is read by "
                    + "the Spark driver)");
        }
        if (startsWithArray(file)) {
            JsonNode root;
            try {
                root = JSON.readTree(file.toFile());
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException("dataset file " + file + " is not valid JSON at line "
                        + e.getLocation().getLineNr() + ": " + e.getOriginalMessage());
            }
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < root.size(); i++) {
                rows.add(new Row(requireObject(root.get(i), file + " [" + i + "]"), name + " [" + i + "]"));
            }
            return rows;
        }
        List<Row> rows = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int lineNo = 0;
            while ((line = r.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                JsonNode node;
                try {
                    node = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new IllegalArgumentException("dataset file " + file + " line " + lineNo + " is not valid JSON: "
                            + e.getOriginalMessage());
                }
                rows.add(new Row(requireObject(node, file + " line " + lineNo), name + " line " + lineNo));
            }
        }
        return rows;
    }

    private static JsonNode requireObject(JsonNode node, String where) {
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("dataset row at " + where + " is not a JSON object");
        }
        return node;
    }

    private static boolean startsWithArray(Path file) throws IOException {
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            int c;
            while ((c = r.read()) != -1) {
                if (!Character.isWhitespace(c) && c != '\uFEFF') {
                    return c == '[';
                }
            }
        }
        return false;
    }
}
