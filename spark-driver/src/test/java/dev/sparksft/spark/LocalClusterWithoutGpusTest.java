package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** device: cuda on a cluster manager that schedules no GPUs: the error names the settings to add. */
class LocalClusterWithoutGpusTest {
    @TempDir
    static Path home;
    static SparkSession spark;

    @BeforeAll
    static void startCluster() throws Exception {
        spark = LocalClusterTest.start(home, false);
    }

    @AfterAll
    static void stopCluster() {
        LocalClusterTest.stop(spark);
    }

    @Test
    void cudaWithoutGpuResourcesNamesTheMissingSettings(@TempDir Path dir) throws Exception {
        // refused on the driver, before any task runs; the ranks check their resources again (GpuAssignmentTest)
        Exception e = assertThrows(IllegalArgumentException.class, () -> TrainingJob.run(spark,
                SparkTests.values(dir, FaultToleranceTest.COMMON, "device=cuda"), new PrintStream(new ByteArrayOutputStream())));
        String line = Failures.oneLine(e);
        assertTrue(line.contains("device: cuda, but Spark assigned no GPU to training task")
                && line.contains("spark.executor.resource.gpu.amount") && line.contains("spark.task.resource.gpu.amount=1")
                && line.contains("spark.executor.resource.gpu.discoveryScript"), line);
    }
}
