package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.SparkContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/ARCHITECTURE.md invariants 5 and 6 through Spark: a rank that fails is retried with its stage and
 * resumes from the newest checkpoint to the same weights; a rank that stops answering or never
 * joins fails the stage within ddp_timeout, or within rank_silence_timeout when its heartbeat stops
 * (whatever ddp_timeout says), and the error names it; a rank that is slow but alive is waited for.
 */
class FaultToleranceTest {
    static final String COMMON = "world_size: 2\nper_device_train_batch_size: 1\ngradient_accumulation_steps: 1\n"
            + "learning_rate: 1.0e-3\nlr_scheduler_type: cosine\nwarmup_steps: 1\nweight_decay: 0.1\n"
            + "num_train_epochs: 1\nsave_steps: 2\n";

    @AfterEach
    void clearHooks() {
        SparkContext sc = SparkTests.spark().sparkContext();
        sc.setLocalProperty(FaultInjection.FAIL, null);
        sc.setLocalProperty(FaultInjection.STALL, null);
        sc.setLocalProperty(FaultInjection.SLOW, null);
    }

    static List<String> train(Path dir, String extra, String... overrides) throws Exception {
        return TrainingJob.run(SparkTests.spark(), SparkTests.values(dir, COMMON + extra, overrides),
                new PrintStream(new ByteArrayOutputStream(), true));
    }

    @Test
    void aRankThatFailsOnceIsRetriedAndResumesToTheSameWeights(@TempDir Path dir) throws Exception {
        Path plain = Files.createDirectories(dir.resolve("plain"));
        train(plain, "");
        Path faulty = Files.createDirectories(dir.resolve("faulty"));
        Path marker = dir.resolve("failed-once");
        // 11 examples, global batch 2: 6 steps; checkpoint-2 exists when rank 1 fails entering step index 3
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, "1:3:" + marker);
        List<String> ranks = train(faulty, "");
        assertTrue(Files.exists(marker), "the hook must have failed rank 1 once");
        JsonNode rank0 = SparkTests.JSON.readTree(ranks.get(0));
        assertTrue(rank0.get("resumed_from").asText().endsWith("checkpoint-2"), ranks.get(0));
        assertEquals(6, rank0.get("global_step").asInt());
        double rel = DistributedTrainingTest.relativeDifference(DistributedTrainingTest.weights(plain.resolve("out")),
                DistributedTrainingTest.weights(faulty.resolve("out")),
                DistributedTrainingTest.weights(SparkTests.root().resolve("model")));
        assertTrue(rel < 1e-6, "the retried run's weights differ by " + rel + " of the update");
        assertEquals(DistributedTrainingTest.losses(plain.resolve("out")), DistributedTrainingTest.losses(faulty.resolve("out")));
        List<String> log = Files.readAllLines(faulty.resolve("out/trainer_log.jsonl"));
        assertEquals(6, log.size(), "the resumed attempt keeps steps 1-2 and appends 3-6: " + log);
    }

    @Test
    void aRankThatFailsBeforeTheGroupFormsDoesNotLeaveTheOthersWaitingForTheTimeout(@TempDir Path dir) throws Exception {
        Path marker = dir.resolve("failed-loading");
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.FAIL, "1:-1:" + marker);
        long start = System.nanoTime();
        List<String> ranks = train(dir, "", "ddp_timeout=120");
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(Files.exists(marker));
        assertEquals(6, SparkTests.JSON.readTree(ranks.get(0)).get("global_step").asInt());
        // rank 0 learns of the failure at the Spark barrier, not after 120 s in the Gloo rendezvous
        assertTrue(seconds < 60, "the retried run took " + seconds + " s");
    }

    @Test
    void aRankThatStopsAnsweringFailsTheJobWithinTheTimeoutNamingIt(@TempDir Path dir) throws Exception {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.STALL, "1:2");
        long start = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> train(dir, "", "ddp_timeout=4"));
        double seconds = (System.nanoTime() - start) / 1e9;
        String m = e.getMessage();
        assertTrue(m.contains("spark-sft rank 0 of 2 failed at step 2"), m);
        assertTrue(m.contains("did not complete within 4 s") && m.contains("rank 1 last reported step 2"), m);
        assertTrue(Failures.oneLine(e).startsWith("spark-sft rank 0 of 2 failed at step 2"), Failures.oneLine(e));
        assertTrue(seconds < 60, "two attempts of 4 s each took " + seconds + " s");
    }

    /** LLaMA-Factory's examples' ddp_timeout: 5.7 years. */
    static final String YEARS = "ddp_timeout=180000000";

    @Test
    void aHungRankFailsTheStageAfterItsSilenceWhateverDdpTimeoutSays(@TempDir Path dir) throws Exception {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.STALL, "1:2");
        long start = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> train(dir, "", YEARS, "rank_silence_timeout=3"));
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("hung rank: two attempts failed in %.1f s%n", seconds);
        String m = e.getMessage();
        assertTrue(Failures.oneLine(e).startsWith("spark-sft rank 0 of 2 failed at step 2: DistributedException: rank 0:"
                + " gave up the collective on a count: rank 1 has sent no heartbeat for"), Failures.oneLine(e));
        assertTrue(m.contains("(rank_silence_timeout 3 s)") && m.contains("it last reported step 2"), m);
        assertTrue(seconds < 60, "two attempts of about 3 s each took " + seconds + " s");
    }

    @Test
    void aSlowRankThatBeatsIsWaitedFor(@TempDir Path dir) throws Exception {
        // rank 1 spends 3 times the silence timeout before step 2 (a long save or evaluation); rank 0 waits for it
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.SLOW, "1:2:6");
        List<String> ranks = train(dir, "", YEARS, "rank_silence_timeout=2");
        assertEquals(6, SparkTests.JSON.readTree(ranks.get(0)).get("global_step").asInt());
        assertTrue(SparkTests.JSON.readTree(ranks.get(0)).get("resumed_from").isNull(), "no attempt failed: " + ranks.get(0));
    }

    @Test
    void aRankThatNeverJoinsFailsTheJobNamingIt(@TempDir Path dir) throws Exception {
        SparkTests.spark().sparkContext().setLocalProperty(FaultInjection.STALL, "1:join");
        long start = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> train(dir, "", "ddp_timeout=4"));
        double seconds = (System.nanoTime() - start) / 1e9;
        String m = e.getMessage();
        assertTrue(m.contains("rank 0 could not join the Gloo group of 2 ranks") && m.contains("rank(s) [1] never joined"), m);
        assertTrue(seconds < 60, "took " + seconds + " s");
    }
}
