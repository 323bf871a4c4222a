package dev.sparksft.data;

import dev.sparksft.UserError;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;

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

    /**
     * The rows of one file's text: a JSON array of objects, or JSON Lines.
     *
     * @param name      the file name rows are reported with ("data.jsonl line 3")
     * @param fullName  the path errors are reported with
     * @param malformed null: a malformed row is an error; else it is described here and skipped
     */
    public static List<Row> parse(String name, String fullName, String text, List<String> malformed) {
        List<Row> rows = new ArrayList<>();
        if (startsWithArray(text)) {
            JsonNode root;
            try {
                root = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                bad(malformed, "dataset file " + fullName + " is not valid JSON at line " + e.getLocation().getLineNr()
                        + ": " + e.getOriginalMessage());
                return rows;
            }
            for (int i = 0; i < root.size(); i++) {
                if (isObject(root.get(i), fullName + " [" + i + "]", malformed)) {
                    rows.add(new Row(root.get(i), name + " [" + i + "]"));
                }
            }
            return rows;
        }
        int lineNo = 0;
        for (String line : text.split("\n", -1)) {
            lineNo++;
            if (line.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                bad(malformed, "dataset file " + fullName + " line " + lineNo + " is not valid JSON: " + e.getOriginalMessage());
                continue;
            }
            if (isObject(node, fullName + " line " + lineNo, malformed)) {
                rows.add(new Row(node, name + " line " + lineNo));
            }
        }
        return rows;
    }

    private static void bad(List<String> malformed, String message) {
        if (malformed == null) {
            throw new UserError(message);
        }
        malformed.add(message);
    }

    private static boolean isObject(JsonNode node, String where, List<String> malformed) {
        if (node == null || !node.isObject()) {
            bad(malformed, "dataset row at " + where + " is not a JSON object");
            return false;
        }
        return true;
    }

    static boolean startsWithArray(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!Character.isWhitespace(c) && c != '\uFEFF') {
                return c == '[';
            }
        }
        return false;
    }

    /** .json and .jsonl files hold rows; other files in a dataset folder are ignored. */
    public static boolean isJsonName(String name) {
        return name.endsWith(".json") || name.endsWith(".jsonl");
    }
}
