package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A disk that fills while a model is saved: {@code sft train} in a child JVM whose files may not
 * grow past half a model.safetensors ({@code ulimit -f}; SIGXFSZ ignored, so a write past the limit
 * fails with EFBIG "File too large" the way a full disk fails with ENOSPC). The run exits 1 with a
 * line naming the file and the cause, removes its temporary folder and leaves the previous files
 * byte for byte.
 */
class DiskFullTest {
    @TempDir
    static Path shared;
    static Path out;
    static long modelBytes;

    @BeforeAll
    static void aFinishedRun() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/bash")), "needs bash for ulimit");
        Torch.load(1);    // also unpacks libtorch into JavaCPP's cache, which the limited child then only reads
        Path model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 7, 32, 2, 4, 2, 64, null, 0, 0));
        Path data = Files.createDirectories(shared.resolve("data"));
        StringBuilder rows = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            rows.append("{\"instruction\": \"Echo\", \"input\": \"abc").append(i).append("\", \"output\": \"abc")
                    .append(i).append("\"}\n");
        }
        Files.writeString(data.resolve("echo.jsonl"), rows);
        out = shared.resolve("out");
        Files.writeString(shared.resolve("run.yaml"), "model_name_or_path: " + model + "\ntemplate: chatml\n"
                + "dataset: echo.jsonl\ndataset_dir: " + data + "\ncutoff_len: 32\ndo_train: true\nfinetuning_type: full\n"
                + "output_dir: " + out + "\nper_device_train_batch_size: 2\nmax_steps: 4\nsave_steps: 2\n"
                + "learning_rate: 1.0e-3\nlogging_steps: 1\nnum_threads: 1\n");
        TrainCommand.run(SftConfig.load(shared.resolve("run.yaml"), List.of()));
        modelBytes = Files.size(out.resolve("model.safetensors"));
    }

    record Exit(int code, String stderr) {}

    /** {@code sft train run.yaml overrides...} in a JVM whose files may not grow past {@code maxBytes}. */
    static Exit trainWithFileSizeLimit(long maxBytes, String... overrides) throws Exception {
        List<String> java = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:-UsePerfData", "-cp", System.getProperty("java.class.path"), SftMain.class.getName(), "train",
                shared.resolve("run.yaml").toString()));
        java.addAll(List.of(overrides));
        // ulimit -f counts 1024-byte blocks; with SIGXFSZ ignored (inherited across exec) a write past it fails
        String script = "trap '' XFSZ; ulimit -f " + maxBytes / 1024 + "; exec \"$@\"";
        List<String> command = new ArrayList<>(List.of("/bin/bash", "-c", script, "bash"));
        command.addAll(java);
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("OMP_WAIT_POLICY", "passive");
        Process p = pb.start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);   // a pipe: not limited
        return new Exit(p.waitFor(), err);
    }

    /** Every file under {@code dir}, by relative path, with its bytes. */
    static Map<String, byte[]> contents(Path dir) throws IOException {
        Map<String, byte[]> files = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                files.put(dir.relativize(f).toString(), Files.readAllBytes(f));
            }
        }
        return files;
    }

    static void assertSameFiles(Map<String, byte[]> before, Path dir) throws IOException {
        Map<String, byte[]> after = contents(dir);
        assertEquals(before.keySet(), after.keySet(), "the files of " + dir);
        before.forEach((name, bytes) -> assertArrayEquals(bytes, after.get(name), name + " is unchanged"));
    }

    static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aCheckpointThatDoesNotFitFailsNamingItsFileAndLeavesTheOthers() throws Exception {
        Map<String, byte[]> checkpoint4 = contents(out.resolve("checkpoint-4"));
        byte[] model = Files.readAllBytes(out.resolve("model.safetensors"));
        // resumed at step 2, the run trains steps 3 and 4 and saves checkpoint-4 again: its model does not fit
        Exit e = trainWithFileSizeLimit(modelBytes / 2, "resume_from_checkpoint=" + out.resolve("checkpoint-2"));
        assertEquals(1, e.code(), e.stderr());
        String line = e.stderr().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse(e.stderr());
        assertTrue(line.contains("could not save checkpoint-4 in output_dir " + out + ": writing "
                + out.resolve(".checkpoint-4.tmp").resolve("model.safetensors") + " failed: File too large"), line);
        assertFalse(names(out).contains(".checkpoint-4.tmp"), "the temporary folder is removed: " + names(out));
        assertSameFiles(checkpoint4, out.resolve("checkpoint-4"));
        assertArrayEquals(model, Files.readAllBytes(out.resolve("model.safetensors")));
    }

    @Test
    void aFinalModelThatDoesNotFitFailsNamingItsFileAndLeavesThePreviousOne() throws Exception {
        byte[] model = Files.readAllBytes(out.resolve("model.safetensors"));
        Map<String, byte[]> checkpoints = new TreeMap<>(contents(out.resolve("checkpoint-4")));
        // resumed at the last step and saving no checkpoint, the run goes straight to the final model
        Exit e = trainWithFileSizeLimit(modelBytes / 2, "resume_from_checkpoint=" + out.resolve("checkpoint-4"),
                "save_strategy=no");
        assertEquals(1, e.code(), e.stderr());
        String line = e.stderr().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse(e.stderr());
        assertTrue(line.contains("could not save the final model in output_dir " + out + ": writing "
                + out.resolve(".final-model.tmp").resolve("model.safetensors") + " failed: File too large"), line);
        assertFalse(names(out).contains(".final-model.tmp"), "the temporary folder is removed: " + names(out));
        assertArrayEquals(model, Files.readAllBytes(out.resolve("model.safetensors")), "the previous model is intact");
        assertSameFiles(checkpoints, out.resolve("checkpoint-4"));
    }
}
