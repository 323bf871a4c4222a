package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The key table: every entry is documented in the README, and defaults compare by value. */
class ConfigKeysTest {
    @Test
    void everyDecidedKeyIsInTheReadmesKeyTable() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        Set<String> missing = new TreeSet<>();
        for (String key : ConfigKeys.all().keySet()) {
            if (!readme.contains("`" + key + "`")) {
                missing.add(key);
            }
        }
        assertEquals(Set.of(), missing, "README.md's key table must list every key of ConfigKeys");
    }

    @Test
    void defaultsCompareByValue() {
        ConfigKeys.Decision d = ConfigKeys.of("video_fps");
        assertTrue(d.isDefault(new com.fasterxml.jackson.databind.node.IntNode(2)), "2 is the default 2.0");
        assertTrue(!d.isDefault(new com.fasterxml.jackson.databind.node.DoubleNode(3.0)));
        assertTrue(ConfigKeys.of("fsdp").isDefault(null), "unset is fsdp's default ''");
        assertTrue(ConfigKeys.of("mix_strategy").isDefault(new com.fasterxml.jackson.databind.node.TextNode("CONCAT")),
                "enum values compare without case");
        assertEquals(List.of(), ConfigKeys.all().values().stream()
                .filter(k -> k.kind() == ConfigKeys.Kind.REFUSED && k.defaultValue() == null).map(ConfigKeys.Decision::key)
                .toList(), "every refused key states the default it accepts");
    }
}
