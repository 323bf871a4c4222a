package dev.sparksft;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Flat test YAMLs built from a base and a test's own lines. A configuration may not set a key
 * twice, so a later line of a key replaces an earlier one (with the indented lines under it).
 */
public final class TestYaml {
    private static final Pattern KEY = Pattern.compile("^([A-Za-z_][A-Za-z0-9_.]*)\\s*:");

    private TestYaml() {}

    /** {@code base} then {@code extra}, each top-level key kept once: its last setting. */
    public static String withExtra(String base, String extra) {
        Map<String, String> entries = new LinkedHashMap<>();   // key -> its lines; unkeyed lines under their own ids
        List<String> order = new ArrayList<>();
        String current = null;
        int anonymous = 0;
        for (String line : (base.endsWith("\n") || base.isEmpty() ? base : base + "\n").concat(extra).split("\n", -1)) {
            Matcher m = KEY.matcher(line);
            if (m.find()) {
                current = m.group(1);
                order.remove(current);
                order.add(current);
                entries.put(current, line + "\n");
            } else if (current != null && (line.startsWith(" ") || line.startsWith("-"))) {
                entries.put(current, entries.get(current) + line + "\n");
            } else if (!line.isEmpty()) {
                String id = "\u0000" + anonymous++;
                order.add(id);
                entries.put(id, line + "\n");
                current = null;
            }
        }
        StringBuilder out = new StringBuilder();
        order.forEach(k -> out.append(entries.get(k)));
        return out.toString();
    }
}
