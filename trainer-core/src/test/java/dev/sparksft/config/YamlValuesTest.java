package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sparksft.UserError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The YAML of a run: duplicate keys, infinities and syntax errors are refused naming file and line. */
class YamlValuesTest {
    @Test
    void aKeySetTwiceNamesTheKeyAndBothLines() {
        UserError e = assertThrows(UserError.class,
                () -> YamlValues.mapping("config file a.yaml", "cutoff_len: 64\n# later\nlearning_rate: 1.0e-3\ncutoff_len: 128\n"));
        assertEquals("config file a.yaml: key 'cutoff_len' is set twice, on line 1 and line 4; keep one of them",
                e.getMessage());
    }

    @Test
    void duplicatesAreCheckedPerMappingSoNestedKeysMayRepeatTopLevelNames() {
        assertEquals(2, YamlValues.mapping("f", "lr: 1\nopts:\n  lr: 2\n").size(), "lr in a nested mapping is its own key");
        UserError e = assertThrows(UserError.class, () -> YamlValues.mapping("f", "opts:\n  a: 1\n  a: 2\n"));
        assertEquals("f: key 'a' is set twice, on line 2 and line 3; keep one of them", e.getMessage());
    }

    @Test
    void infinitiesAreNamedAsNonFiniteNotAsSyntaxErrors() {
        UserError file = assertThrows(UserError.class, () -> YamlValues.mapping("config file a.yaml", "x: 1\nlearning_rate: .inf\n"));
        assertEquals("config file a.yaml line 2: numeric value '.inf' is not a finite number; every number of a run "
                + "must be finite (.inf and .nan are not)", file.getMessage());
        UserError override = assertThrows(UserError.class, () -> YamlValues.value("learning_rate=-.inf", "-.inf"));
        assertEquals("override 'learning_rate=-.inf': numeric value '-.inf' is not a finite number; every number of a "
                + "run must be finite (.inf and .nan are not)", override.getMessage());
    }

    @Test
    void syntaxErrorsAndNonMappingsNameTheSource() {
        UserError syntax = assertThrows(UserError.class, () -> YamlValues.mapping("config file a.yaml", "a: [1, 2\nb: 3\n"));
        assertEquals(true, syntax.getMessage().startsWith("config file a.yaml line "), syntax.getMessage());
        assertEquals(true, syntax.getMessage().contains("is not valid YAML"), syntax.getMessage());
        UserError list = assertThrows(UserError.class, () -> YamlValues.mapping("config file a.yaml", "- a\n- b\n"));
        assertEquals("config file a.yaml must be a mapping of key: value", list.getMessage());
        assertEquals(0, YamlValues.mapping("f", "# only a comment\n").size(), "an empty file is an empty mapping");
    }

    @Test
    void configFilesGoThroughTheseRules(@TempDir Path dir) throws Exception {
        Path yaml = Files.writeString(dir.resolve("run.yaml"), "model_name_or_path: m\nstage: sft\nstage: sft\n");
        UserError e = assertThrows(UserError.class, () -> SftConfig.loadValues(yaml, List.of()));
        assertEquals("config file " + yaml + ": key 'stage' is set twice, on line 2 and line 3; keep one of them",
                e.getMessage());
        Path latin1 = Files.write(dir.resolve("l.yaml"), new byte[] {'a', ':', ' ', (byte) 0xe9, '\n'});
        assertEquals("config file " + latin1 + " is not UTF-8 text; save it as UTF-8",
                assertThrows(UserError.class, () -> SftConfig.loadValues(latin1, List.of())).getMessage());
        assertEquals(2.0, SftConfig.loadValues(Files.writeString(dir.resolve("ok.yaml"), "x: 1\n"), List.of("x=2.0"))
                .get("x").asDouble(), "an override replaces a file's key: that is no duplicate");
    }
}
