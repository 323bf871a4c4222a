package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training with separate executor JVMs (local-cluster: a standalone master and workers in this
 * JVM, executors as child processes), where an executor can really die, and where Spark
 * schedules GPUs: each worker reports one GPU through a discovery script, and each executor sees
 * physical GPUs 3 and 0 as cuda:0 and cuda:1 (CUDA_VISIBLE_DEVICES=3,0).
 */
class LocalClusterTest {
    @TempDir
    static Path home;
    static SparkSession spark;

    @BeforeAll
    static void startCluster() throws Exception {
        spark = start(home, true);
    }

    /**
     * A local-cluster session of 2 executor JVMs with 1 core each; with {@code gpus}, each worker
     * reports GPU "0" through a discovery script and each task asks for one GPU.
     */
    static SparkSession start(Path home, boolean gpus) throws Exception {
        SparkTests.stop();
        SparkTests.root();
        // local-cluster launches executors from SPARK_HOME/jars: link the test classpath's jars there
        Path jars = Files.createDirectories(home.resolve("spark/jars"));
        Files.createDirectories(home.resolve("spark/launcher/target/scala-2.13"));
        String classpath = System.getProperty("java.class.path");
        for (String entry : classpath.split(File.pathSeparator)) {
            Path p = Path.of(entry);
            if (entry.endsWith(".jar") && Files.isRegularFile(p) && !Files.exists(jars.resolve(p.getFileName()))) {
                Files.createSymbolicLink(jars.resolve(p.getFileName()), p);
            }
        }
        System.setProperty("spark.testing", "true");
        System.setProperty("spark.test.home", home.resolve("spark").toString());
        String jvmOptions = ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("--add-") || a.startsWith("-Djdk.reflect") || a.startsWith("-Dio.netty")
                        || a.startsWith("-XX:+IgnoreUnrecognizedVMOptions"))
                .collect(Collectors.joining(" "));
        SparkSession.Builder builder = SparkSession.builder().master("local-cluster[2,1,1536]")
                .appName("spark-sft-local-cluster").config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.executor.extraClassPath", classpath)
                .config("spark.executor.extraJavaOptions", jvmOptions)
                .config("spark.executorEnv.OMP_WAIT_POLICY", "passive")
                .config("spark.barrier.sync.timeout", "120s")
                .config("spark.stage.maxConsecutiveAttempts", "2");
        if (gpus) {
            Path discovery = home.resolve("get-gpus.sh");
            Files.writeString(discovery, "#!/usr/bin/env bash\necho '{\"name\": \"gpu\", \"addresses\": [\"0\"]}'\n");
            Files.setPosixFilePermissions(discovery, PosixFilePermissions.fromString("rwxr-xr-x"));
            builder.config("spark.executorEnv.CUDA_VISIBLE_DEVICES", "3,0")
                    .config("spark.worker.resource.gpu.amount", "1")
                    .config("spark.worker.resource.gpu.discoveryScript", discovery.toString())
                    .config("spark.executor.resource.gpu.amount", "1")
                    .config("spark.task.resource.gpu.amount", "1");
        }
        SparkSession session = builder.getOrCreate();
        session.sparkContext().setLogLevel("WARN");
        return session;
    }

    @AfterAll
    static void stopCluster() {
        stop(spark);
    }

    static void stop(SparkSession session) {
        if (session != null) {
            session.stop();
        }
        System.clearProperty("spark.testing");
        System.clearProperty("spark.test.home");
    }

    static List<String> train(Path dir, String... overrides) throws Exception {
        return TrainingJob.run(spark, SparkTests.values(dir, FaultToleranceTest.COMMON, overrides),
                new PrintStream(new ByteArrayOutputStream(), true));
    }

    @Test
    void aKilledExecutorIsReplacedAndTheRunEndsWithTheUninterruptedWeights(@TempDir Path dir) throws Exception {
        Path plain = Files.createDirectories(dir.resolve("plain"));
        train(plain);
        Path killed = Files.createDirectories(dir.resolve("killed"));
        Path marker = dir.resolve("killed-once");
        spark.sparkContext().setLocalProperty(FaultInjection.DIE, "1:3:" + marker);
        try {
            List<String> ranks = train(killed);
            assertTrue(Files.exists(marker), "rank 1's executor must have been killed");
            JsonNode rank0 = SparkTests.JSON.readTree(ranks.get(0));
            assertTrue(rank0.get("resumed_from").asText().endsWith("checkpoint-2"), ranks.get(0));
        } finally {
            spark.sparkContext().setLocalProperty(FaultInjection.DIE, null);
        }
        double rel = DistributedTrainingTest.relativeDifference(DistributedTrainingTest.weights(plain.resolve("out")),
                DistributedTrainingTest.weights(killed.resolve("out")),
                DistributedTrainingTest.weights(SparkTests.root().resolve("model")));
        assertTrue(rel < 1e-6, "weights after the executor loss differ by " + rel + " of the update");
    }

    @Test
    void eachRankGetsTheGpuSparkAssignedRemappedThroughCudaVisibleDevices(@TempDir Path dir) throws Exception {
        Exception e = assertThrows(Exception.class, () -> train(dir, "device=cuda"));
        String m = e.getMessage();
        assertTrue(m.contains("(Spark GPU 0, CUDA_VISIBLE_DEVICES=3,0) is cuda:1"), m);
        assertTrue(m.contains("this libtorch has no CUDA device"), m);
    }
}
