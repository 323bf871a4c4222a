package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Optional;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * world_size against the cluster's task slots: a barrier stage of more tasks than slots is refused
 * on the driver before any data is read, naming world_size, the slots and the settings that decide
 * them, instead of Spark retrying its own check for 10 minutes.
 */
class TaskSlotsTest {
    /** TrainingJob.run on a fresh session of {@code master} with {@code settings}; the refusal and how long it took. */
    static UserError refusedOn(String master, Path dir, String[] settings, String... overrides) throws Exception {
        SparkTests.stop();
        SparkTests.root();
        SparkSession.Builder builder = SparkSession.builder().master(master).appName("spark-sft-slots")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1");
        for (int i = 0; i < settings.length; i += 2) {
            builder.config(settings[i], settings[i + 1]);
        }
        SparkSession spark = builder.getOrCreate();
        try {
            long start = System.nanoTime();
            UserError e = assertThrows(UserError.class, () -> TrainingJob.run(spark,
                    SparkTests.values(dir, FaultToleranceTest.COMMON, overrides), new PrintStream(new ByteArrayOutputStream())));
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("%s %s: refused in %.2f s%n", master, String.join(" ", overrides), seconds);
            // Spark's own check would retry every 15 s for 10 minutes
            assertTrue(seconds < 15, "the refusal took " + seconds + " s");
            return e;
        } finally {
            spark.stop();
        }
    }

    @Test
    void moreRanksThanLocalCoresAreRefusedAtOnce(@TempDir Path dir) throws Exception {
        String m = refusedOn("local[2]", dir, new String[0], "world_size=3").getMessage();
        assertTrue(m.startsWith("world_size 3 needs 3 task slots") && m.contains("but Spark has 2 (local[2] = 2 cores"), m);
        assertTrue(m.contains("Lower world_size to 2") && m.contains("--master local[N]"), m);
    }

    @Test
    void taskCpusDivideTheLocalCores(@TempDir Path dir) throws Exception {
        String m = refusedOn("local[2]", dir, new String[] {"spark.task.cpus", "2"}, "world_size=2").getMessage();
        assertTrue(m.startsWith("world_size 2 needs 2 task slots")
                && m.contains("but Spark has 1 (local[2] = 2 cores / spark.task.cpus 2)"), m);
        assertTrue(m.contains("Lower world_size to 1 or lower spark.task.cpus"), m);
    }

    static SparkConf conf(String... settings) {
        SparkConf conf = new SparkConf(false);
        for (int i = 0; i < settings.length; i += 2) {
            conf.set(settings[i], settings[i + 1]);
        }
        return conf;
    }

    static int slots(String master, boolean cuda, String... settings) {
        return TaskSlots.fromSettings(conf(settings), master, cuda).orElseThrow().slots();
    }

    @Test
    void slotsFollowFromTheSettingsWhereTheyDecideThem() {
        assertEquals(1, slots("local", false));
        assertEquals(4, slots("local[4,2]", false));
        assertEquals(Runtime.getRuntime().availableProcessors(), slots("local[*]", false));
        assertEquals(2, slots("local-cluster[2,1,1536]", false));
        assertEquals(4, slots("local-cluster[2,4,1536]", false, "spark.task.cpus", "2"));
        // YARN and Kubernetes: 2 executors of 1 core unless set
        assertEquals(2, slots("yarn", false));
        assertEquals(6, slots("k8s://https://api:6443", false, "spark.executor.instances", "3", "spark.executor.cores", "4",
                "spark.task.cpus", "2"));
        // cuda: the GPUs per executor limit the tasks when they are fewer than the cores allow
        assertEquals(3, slots("yarn", true, "spark.executor.instances", "3", "spark.executor.cores", "8",
                "spark.executor.resource.gpu.amount", "1", "spark.task.resource.gpu.amount", "1"));
        assertEquals(8, slots("yarn", true, "spark.executor.instances", "2", "spark.executor.cores", "8",
                "spark.executor.resource.gpu.amount", "1", "spark.task.resource.gpu.amount", "0.25"));
        // standalone: executors of spark.executor.cores up to spark.cores.max; without them, only the registered executors tell
        assertEquals(8, slots("spark://host:7077", false, "spark.cores.max", "8", "spark.executor.cores", "2"));
        assertEquals(Optional.empty(), TaskSlots.fromSettings(conf(), "spark://host:7077", false));
    }

    @Test
    void aClusterTooSmallForWorldSizeIsRefusedNamingTheSettings() {
        UserError e = assertThrows(UserError.class, () -> TaskSlots.requireBySettings(conf("spark.executor.instances", "2",
                "spark.executor.cores", "8", "spark.executor.resource.gpu.amount", "1", "spark.task.resource.gpu.amount", "1"),
                "yarn", 4, true));
        String m = e.getMessage();
        assertTrue(m.contains("world_size 4 needs 4 task slots") && m.contains("but Spark has 2 (spark.executor.instances 2 x"
                + " min(spark.executor.cores 8 / spark.task.cpus 1, spark.executor.resource.gpu.amount 1 /"
                + " spark.task.resource.gpu.amount 1.0) = 1 tasks per executor)"), m);
        assertTrue(m.contains("raise spark.executor.instances"), m);
        e = assertThrows(UserError.class, () -> TaskSlots.requireBySettings(conf("spark.dynamicAllocation.enabled", "true"),
                "yarn", 2, false));
        assertTrue(e.getMessage().contains("set spark.dynamicAllocation.enabled=false"), e.getMessage());
        assertEquals(4, TaskSlots.requireBySettings(conf("spark.executor.instances", "4"), "yarn", 4, false).orElseThrow().slots());
    }
}
