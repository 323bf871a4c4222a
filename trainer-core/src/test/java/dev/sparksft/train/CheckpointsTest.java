package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoint integrity (checksums.json): a damaged newest checkpoint is named and skipped for the
 * newest intact one, which gives exactly the weights of a run resumed from it; none intact, or a
 * damaged checkpoint asked for by path, is refused naming it; a checkpoint without checksums (an
 * older version's) still resumes. And the save rule's closed form against the trainer's.
 */
class CheckpointsTest {
    static final String COMMON = "per_device_train_batch_size: 2\nlearning_rate: 1.0e-3\nmax_steps: 6\nsave_steps: 2\n"
            + "warmup_steps: 1\nlr_scheduler_type: cosine\nweight_decay: 0.1\n";
    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static Path first;               // output_dir of a run that saved checkpoint-2, -4 and -6
    static byte[] resumedFrom2;      // the final model.safetensors of a run resumed from checkpoint-2

    @BeforeAll
    static void runAndResume() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 5, 32, 2, 4, 2, 64, null, 0, 0));
        data = Files.createDirectories(shared.resolve("data"));
        StringBuilder rows = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            String s = "abcdefghij".repeat(3).substring(0, 3 + 2 * i);
            rows.append("{\"instruction\": \"Echo\", \"input\": \"").append(s).append("\", \"output\": \"").append(s)
                    .append("\"}\n");
        }
        Files.writeString(data.resolve("echo.jsonl"), rows);
        first = shared.resolve("first");
        TrainCommand.run(config(first));
        Path plain = shared.resolve("resumed-from-2");
        TrainCommand.run(config(plain, "resume_from_checkpoint=" + first.resolve("checkpoint-2")));
        resumedFrom2 = Files.readAllBytes(plain.resolve("model.safetensors"));
    }

    static SftConfig config(Path out, String... overrides) throws Exception {
        Path f = Files.createDirectories(out.resolveSibling(out.getFileName() + "-config")).resolve("run.yaml");
        Files.writeString(f, "model_name_or_path: " + model + "\ntemplate: chatml\ndataset: echo.jsonl\ndataset_dir: "
                + data + "\ncutoff_len: 64\nstage: sft\ndo_train: true\nfinetuning_type: full\noutput_dir: " + out
                + "\nlogging_steps: 1\nnum_threads: 1\n" + COMMON);
        return SftConfig.load(f, List.of(overrides));
    }

    /**
     * save_only_model: true writes checkpoints without optimizer.safetensors (about a third of the
     * bytes of an AdamW checkpoint); a resume from one trains to the end with fresh optimizer
     * moments, so its weights differ from the exact resume's.
     */
    @Test
    void saveOnlyModelCheckpointsHoldNoOptimizerStateAndResumeInexactly(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("only-model");
        TrainCommand.run(config(out, "save_only_model=true"));
        assertFalse(Files.exists(out.resolve("checkpoint-2/" + Checkpoints.OPTIMIZER_FILE)));
        assertTrue(Files.exists(out.resolve("checkpoint-2/model.safetensors")));
        assertTrue(Files.size(first.resolve("checkpoint-2/" + Checkpoints.OPTIMIZER_FILE))
                > Files.size(out.resolve("checkpoint-2/model.safetensors")), "AdamW's state is twice the weights");
        assertArrayEquals(Files.readAllBytes(first.resolve("model.safetensors")),
                Files.readAllBytes(out.resolve("model.safetensors")), "not saving the optimizer changes no weight");

        Path resumed = dir.resolve("resumed");
        TrainCommand.run(config(resumed, "resume_from_checkpoint=" + out.resolve("checkpoint-2")));
        assertTrue(Files.exists(resumed.resolve("model.safetensors")));
        assertFalse(java.util.Arrays.equals(resumedFrom2, Files.readAllBytes(resumed.resolve("model.safetensors"))),
                "fresh moments from step 2: not the exact resume's weights");
    }

    /** output_dir as a killed run left it: checkpoint-2 and checkpoint-4 of the first run, nothing else. */
    static Path killedAfterStep4(Path dir) throws Exception {
        Path out = Files.createDirectories(dir.resolve("out"));
        for (String name : List.of("checkpoint-2", "checkpoint-4")) {
            copyDir(first.resolve(name), out.resolve(name));
        }
        return out;
    }

    static void copyDir(Path from, Path to) throws Exception {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path f : s.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
    }

    /** Flips the last byte of the file: a tensor's bytes change, its safetensors header stays valid. */
    static void flipLastByte(Path file) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(f.length() - 1);
            int b = f.read();
            f.seek(f.length() - 1);
            f.write(b ^ 0x7f);
        }
    }

    /** Runs {@code body} with System.err (where slf4j-simple logs) captured. */
    static String logOf(ThrowingRunnable body) throws Exception {
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            body.run();
        } finally {
            System.setErr(err);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        err.print(log);
        return log;
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void aCorruptNewestCheckpointIsNamedAndTheNewestIntactOneResumesExactly(@TempDir Path dir) throws Exception {
        Path out = killedAfterStep4(dir);
        Path optimizer = out.resolve("checkpoint-4").resolve(Checkpoints.OPTIMIZER_FILE);
        flipLastByte(optimizer);
        String log = logOf(() -> TrainCommand.run(config(out, "resume_from_checkpoint=true")));
        assertTrue(log.contains("checkpoint-4 of output_dir " + out + " is corrupt") && log.contains(optimizer
                + " has CRC32C "), log);
        assertTrue(log.contains("resuming from checkpoint-2 of output_dir " + out + ", the newest intact checkpoint"), log);
        assertArrayEquals(resumedFrom2, Files.readAllBytes(out.resolve("model.safetensors")),
                "the run resumed from checkpoint-2 exactly");
        List<String> log2 = Files.readAllLines(out.resolve(TrainerLog.FILE));
        assertTrue(log2.get(0).contains("\"current_steps\":3"), "training went on after step 2: " + log2.get(0));
    }

    @Test
    void noIntactCheckpointIsRefusedNamingEveryOne(@TempDir Path dir) throws Exception {
        Path out = killedAfterStep4(dir);
        flipLastByte(out.resolve("checkpoint-4").resolve(Checkpoints.OPTIMIZER_FILE));
        Path model2 = out.resolve("checkpoint-2").resolve("model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(model2.toFile(), "rw")) {
            f.setLength(f.length() - 100);     // a truncated copy
        }
        UserError e = assertThrows(UserError.class, () -> TrainCommand.run(config(out, "resume_from_checkpoint=true")));
        assertTrue(e.getMessage().startsWith("resume_from_checkpoint: true, but no checkpoint of output_dir " + out
                + " is intact: checkpoint-4 ("), e.getMessage());
        assertTrue(e.getMessage().contains("checkpoint-4" + java.io.File.separator + "optimizer.safetensors has CRC32C"),
                e.getMessage());
        long size = Files.size(first.resolve("checkpoint-2").resolve("model.safetensors"));
        assertTrue(e.getMessage().contains("; checkpoint-2 (" + model2 + " is " + (size - 100) + " bytes, expected "
                + size + ")"), e.getMessage());
        assertFalse(Files.exists(out.resolve("model.safetensors")), "nothing was trained");
    }

    @Test
    void aCorruptCheckpointGivenByPathIsRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        Path checkpoint = dir.resolve("checkpoint-4");
        copyDir(first.resolve("checkpoint-4"), checkpoint);
        flipLastByte(checkpoint.resolve(Checkpoints.OPTIMIZER_FILE));
        UserError e = assertThrows(UserError.class,
                () -> TrainCommand.run(config(dir.resolve("out"), "resume_from_checkpoint=" + checkpoint)));
        assertTrue(e.getMessage().startsWith("resume_from_checkpoint: " + checkpoint + " is corrupt: "
                + checkpoint.resolve(Checkpoints.OPTIMIZER_FILE) + " has CRC32C "), e.getMessage());
        assertTrue(e.getMessage().contains(", expected "), e.getMessage());
    }

    @Test
    void aCheckpointWithoutChecksumsResumesWithANote(@TempDir Path dir) throws Exception {
        Path checkpoint = dir.resolve("checkpoint-2");
        copyDir(first.resolve("checkpoint-2"), checkpoint);
        Files.delete(checkpoint.resolve(Checksums.FILE));
        Path out = dir.resolve("out");
        String log = logOf(() -> TrainCommand.run(config(out, "resume_from_checkpoint=" + checkpoint)));
        assertTrue(log.contains(checkpoint + " has no checksums.json"), log);
        assertArrayEquals(resumedFrom2, Files.readAllBytes(out.resolve("model.safetensors")));
    }

    @Test
    void everyCheckpointHasChecksumsOfEveryFile() throws Exception {
        Path checkpoint = first.resolve("checkpoint-4");
        String manifest = Files.readString(checkpoint.resolve(Checksums.FILE));
        try (Stream<Path> s = Files.list(checkpoint)) {
            for (Path f : s.filter(p -> !p.getFileName().toString().equals(Checksums.FILE)).toList()) {
                assertTrue(manifest.contains("\"" + f.getFileName() + "\""), f.getFileName() + " in " + manifest);
                assertTrue(manifest.contains(Checksums.crc32c(f)), "the CRC32C computed while writing " + f.getFileName()
                        + " is that of its bytes");
            }
        }
        assertTrue(Checkpoints.verify(checkpoint, checkpoint.toString()).isEmpty());
    }

    /** numSaves, which sizes the disk a run needs, counts exactly the steps the trainer saves after. */
    @Test
    void theNumberOfSavesFollowsTheTrainersRule() throws Exception {
        for (String strategy : List.of("steps", "epoch", "no")) {
            TrainingArguments args = config(shared.resolve("saves-" + strategy), "save_strategy=" + strategy,
                    "save_steps=3").training();
            for (long total : new long[] {1, 5, 6, 7, 12}) {
                for (long from = 0; from <= total; from++) {
                    long stepsPerEpoch = 4;
                    long counted = strategy.equals("no") ? 0 : 1;    // the last step
                    for (long done = from + 1; done < total; done++) {
                        counted += Checkpoints.savesBeforeTheEnd(args, done, stepsPerEpoch) ? 1 : 0;
                    }
                    assertEquals(counted, Checkpoints.numSaves(args, from, total, stepsPerEpoch),
                            Map.of("strategy", strategy, "total", total, "from", from).toString());
                }
            }
        }
    }
}
