package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line's error contract: the user's mistake is one line and exit 2; anything else exit 1 with its trace. */
class SftMainTest {
    record Exit(int code, String stderr) {}

    static Exit run(String... args) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = SftMain.exitCode(args, new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Exit(code, err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aConfigurationMistakeIsOneLineAndExitTwo(@TempDir Path dir) throws Exception {
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, "model_name_or_path: m\ntemplate: chatml\ndataset: d\noutput_dir: o\ndo_train: true\n"
                + "learnig_rate: 1.0e-4\n");
        Exit e = run("train", yaml.toString());
        assertEquals(2, e.code(), e.stderr());
        assertTrue(e.stderr().startsWith("error: invalid configuration: learnig_rate: unknown key (did you mean "
                + "'learning_rate'?)"), e.stderr());
        assertEquals(1, e.stderr().strip().lines().count(), "one line: " + e.stderr());
        Exit tpl = run("train", yaml.toString(), "learnig_rate=", "template=chatmll");
        assertEquals(2, tpl.code());
        assertTrue(tpl.stderr().contains("template: unknown template 'chatmll' (did you mean 'chatml'?)"), tpl.stderr());
        assertEquals(2, run("make-dataset", "--task", "sort").code(), "a missing flag");
    }

    @Test
    void aFailureThatIsNotTheUsersMistakeExitsOneWithItsStackTrace(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        // the parent of --out is a file: an I/O failure of the machine, not a configuration mistake
        Exit e = run("make-dataset", "--task", "sort", "--out", file.resolve("d.jsonl").toString());
        assertEquals(1, e.code(), e.stderr());
        assertTrue(e.stderr().contains("java.nio.file.FileAlreadyExistsException") && e.stderr().contains("\tat "),
                e.stderr());
    }
}
