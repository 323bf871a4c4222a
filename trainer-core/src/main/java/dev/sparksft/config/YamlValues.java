package dev.sparksft.config;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;

/**
 * YAML text as the configuration reads it: a mapping of key: value, every problem a
 * {@link UserError} naming the file and the line. A key set twice in one mapping is refused with
 * both lines (YAML parsers, Python's included, silently keep the later value, so a pasted block
 * would override an earlier setting unseen). YAML's infinities and NaN (.inf, .nan) are refused
 * by name: no number of a run means that, and Jackson's own message ("Malformed numeric value")
 * would read as a typo.
 */
final class YamlValues {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private YamlValues() {}

    /** The mapping in {@code text} (an empty text is an empty mapping); {@code source} names it in errors. */
    static ObjectNode mapping(String source, String text) {
        JsonNode root = tree(source, text, true);
        if (root != null && !root.isNull() && !root.isMissingNode() && !root.isObject()) {
            throw new UserError(source + " must be a mapping of key: value");
        }
        return root == null || !root.isObject() ? YAML.createObjectNode() : (ObjectNode) root;
    }

    /** The YAML value of one {@code key=value} override ("" is null). */
    static JsonNode value(String override, String text) {
        if (text.isEmpty()) {
            return YAML.nullNode();
        }
        JsonNode v = tree("override '" + override + "'", text, false);
        return v == null || v.isMissingNode() ? YAML.nullNode() : v;
    }

    /** @param lines whether errors give the line (not for a one-line override) */
    private static JsonNode tree(String source, String text, boolean lines) {
        try {
            requireUniqueKeys(source, text);
            return YAML.readTree(text);
        } catch (JsonProcessingException e) {
            int line = e.getLocation() == null ? -1 : e.getLocation().getLineNr();
            String at = !lines || line < 1 ? "" : " line " + line;
            String message = JsonFiles.parserMessage(e);
            if (message.startsWith("Malformed numeric value")) {
                throw new UserError(source + at + ": " + message.substring("Malformed ".length())
                        + " is not a finite number; every number of a run must be finite (.inf and .nan are not)");
            }
            throw new UserError(source + at + " is not valid YAML: " + message);
        }
    }

    /** Walks the mappings of {@code text} and refuses the first key that one of them holds twice. */
    private static void requireUniqueKeys(String source, String text) throws JsonProcessingException {
        try (JsonParser p = YAML.getFactory().createParser(text)) {
            Deque<Map<String, Integer>> open = new ArrayDeque<>();   // the enclosing mappings: key -> line
            for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
                switch (t) {
                    case START_OBJECT -> open.push(new HashMap<>());
                    case END_OBJECT -> open.pop();
                    case FIELD_NAME -> {
                        int line = p.currentTokenLocation().getLineNr();
                        Integer first = open.peek().putIfAbsent(p.currentName(), line);
                        if (first != null) {
                            throw new UserError(source + ": key '" + p.currentName() + "' is set twice, on line "
                                    + first + " and line " + line + "; keep one of them");
                        }
                    }
                    default -> { }
                }
            }
        } catch (JsonProcessingException e) {
            throw e;
        } catch (IOException e) {
            throw new IllegalStateException("reading YAML from a string", e);
        }
    }
}
