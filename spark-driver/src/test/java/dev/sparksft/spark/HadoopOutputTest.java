package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparksft.UserError;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** output_dir on a Hadoop file system (testfs:, through the Hadoop client): uploads, resume after a retry, refusal. */
class HadoopOutputTest {
    @AfterEach
    void clearHooks() {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, null);
    }

    @Test
    void checkpointsAndTheModelGoToTheHadoopOutputDirAndARetryResumesFromThere(@TempDir Path dir) throws Exception {
        Path plain = Files.createDirectories(dir.resolve("plain"));
        FaultToleranceTest.train(plain, "");

        Path remote = dir.resolve("remote-out");
        String uri = "testfs://" + remote;
        Path marker = dir.resolve("failed-once");
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, "1:3:" + marker);
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        List<String> ranks = TrainingJob.run(SparkTests.spark(), SparkTests.values(dir, FaultToleranceTest.COMMON
                + "save_total_limit: 1\n", "output_dir=" + uri), new PrintStream(progress, true));
        assertTrue(Files.exists(marker), "rank 1 must have failed once");
        assertTrue(ranks.get(0).contains("\"resumed_from\":\"checkpoint-2\""), ranks.get(0));

        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "trainer_log.jsonl",
                "trainer_state.json", "train_results.json", "all_results.json")) {
            assertTrue(Files.isRegularFile(remote.resolve(f)), f + " in the Hadoop output_dir");
        }
        try (Stream<Path> s = Files.list(remote)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(List.of("checkpoint-6"), names.stream().filter(n -> n.startsWith("checkpoint-")).toList(),
                    "save_total_limit 1 keeps the newest checkpoint there too: " + names);
            assertFalse(names.stream().anyMatch(n -> n.startsWith(".")), "no half-uploaded entries: " + names);
        }
        assertEquals(6, Files.readAllLines(remote.resolve("trainer_log.jsonl")).size());
        assertTrue(progress.toString().contains("[spark-sft] step 6/6"), progress.toString());
        double rel = DistributedTrainingTest.relativeDifference(DistributedTrainingTest.weights(plain.resolve("out")),
                DistributedTrainingTest.weights(remote), DistributedTrainingTest.weights(SparkTests.root().resolve("model")));
        assertTrue(rel < 1e-6, "weights differ by " + rel);

        Exception e = assertThrows(IllegalArgumentException.class, () -> TrainingJob.run(SparkTests.spark(),
                SparkTests.values(dir, FaultToleranceTest.COMMON, "output_dir=" + uri),
                new PrintStream(new ByteArrayOutputStream(), true)));
        assertTrue(e.getMessage().contains("already holds another run") && e.getMessage().contains("overwrite_output_dir"),
                e.getMessage());
    }
    /**
     * resume_from_checkpoint: true on a Hadoop output_dir whose newest checkpoint is damaged (a byte of
     * its optimizer state flipped): rank 0 verifies its download, skips it and resumes from the newest
     * intact one, to the weights of the uninterrupted run.
     */
    @Test
    void aCorruptNewestCheckpointIsSkippedForTheNewestIntactOne(@TempDir Path dir) throws Exception {
        Path plain = Files.createDirectories(dir.resolve("plain"));
        FaultToleranceTest.train(plain, "");     // 6 steps: checkpoint-2, -4, -6
        Path remote = dir.resolve("remote-out");
        for (String name : List.of("checkpoint-2", "checkpoint-4")) {   // what a run killed after step 4 leaves
            Files.createDirectories(remote.resolve(name));
            try (Stream<Path> s = Files.list(plain.resolve("out").resolve(name))) {
                for (Path f : s.toList()) {
                    Files.copy(f, remote.resolve(name).resolve(f.getFileName()));
                }
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(remote.resolve("checkpoint-4/optimizer.safetensors").toFile(), "rw")) {
            f.seek(f.length() - 1);
            int b = f.read();
            f.seek(f.length() - 1);
            f.write(b ^ 0x7f);
        }
        List<String> ranks = TrainingJob.run(SparkTests.spark(), SparkTests.values(dir, FaultToleranceTest.COMMON,
                "output_dir=testfs://" + remote, "resume_from_checkpoint=true"), new PrintStream(new ByteArrayOutputStream(), true));
        assertTrue(ranks.get(0).contains("\"resumed_from\":\"checkpoint-2\""), ranks.get(0));
        double rel = DistributedTrainingTest.relativeDifference(DistributedTrainingTest.weights(plain.resolve("out")),
                DistributedTrainingTest.weights(remote), DistributedTrainingTest.weights(SparkTests.root().resolve("model")));
        assertTrue(rel < 1e-6, "weights differ by " + rel);
    }

    /** An output_dir the Hadoop client cannot create files in (sysfs, for root too) is refused before the data is read. */
    @Test
    void anOutputDirThatCannotBeWrittenIsRefusedBeforeTheDataIsRead(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/sys/kernel")), "needs Linux's sysfs");
        String uri = "testfs:///sys/kernel/spark-sft-out";
        Exception e = assertThrows(UserError.class, () -> TrainingJob.run(SparkTests.spark(), SparkTests.values(dir,
                FaultToleranceTest.COMMON, "output_dir=" + uri, "dataset=missing.jsonl"),
                new PrintStream(new ByteArrayOutputStream(), true)));
        assertTrue(e.getMessage().startsWith("output_dir " + uri + " is not writable: creating a file in ")
                && e.getMessage().contains("/sys/kernel failed ("), e.getMessage());
    }
}
