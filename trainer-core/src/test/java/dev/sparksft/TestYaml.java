package dev.sparksft;

import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Flat test YAMLs built from a base and a test's own lines. A configuration may not set a key
 * twice, so a key the extra lines set replaces the base's line instead of following it.
 */
public final class TestYaml {
    private static final Pattern KEY = Pattern.compile("^([A-Za-z_][A-Za-z0-9_.]*)\\s*:", Pattern.MULTILINE);

    private TestYaml() {}

    /** {@code base} without the top-level keys {@code extra} sets, then {@code extra}. */
    public static String withExtra(String base, String extra) {
        Set<String> replaced = KEY.matcher(extra).results().map(m -> m.group(1)).collect(Collectors.toSet());
        String kept = base.lines().filter(line -> {
            Matcher m = KEY.matcher(line);
            return !(m.find() && replaced.contains(m.group(1)));
        }).map(line -> line + "\n").collect(Collectors.joining());
        return kept + extra;
    }
}
