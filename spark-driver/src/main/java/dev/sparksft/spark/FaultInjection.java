package dev.sparksft.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.TaskContext;

/**
 * Test hooks for the failure paths of the training stage, set as Spark local properties by a
 * test (never by a config file): {@code spark-sft.test.fail} = "RANK:STEP:MARKER" makes rank
 * RANK throw when it reaches step STEP, once: only if the file MARKER does not exist yet (it is
 * created), so Spark's retry of the stage then succeeds. {@code spark-sft.test.stall} =
 * "RANK:STEP" makes rank RANK stop answering at step STEP (it sleeps until interrupted).
 */
final class FaultInjection {
    static final String FAIL = "spark-sft.test.fail";
    static final String STALL = "spark-sft.test.stall";

    private final String fail;
    private final String stall;

    private FaultInjection(String fail, String stall) {
        this.fail = fail;
        this.stall = stall;
    }

    /** The hooks of the current task (none outside a task). */
    static FaultInjection ofTask() {
        TaskContext ctx = TaskContext.get();
        return ctx == null ? new FaultInjection(null, null)
                : new FaultInjection(ctx.getLocalProperty(FAIL), ctx.getLocalProperty(STALL));
    }

    void beforeStep(int rank, long step) {
        if (fail != null) {
            String[] f = fail.split(":", 3);
            if (Integer.parseInt(f[0]) == rank && Long.parseLong(f[1]) == step) {
                try {
                    Path marker = Path.of(f[2]);
                    if (!Files.exists(marker)) {
                        Files.createFile(marker);
                        throw new IllegalStateException("injected failure of rank " + rank + " at step " + step);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }
        if (stall != null) {
            String[] s = stall.split(":", 2);
            if (Integer.parseInt(s[0]) == rank && Long.parseLong(s[1]) == step) {
                try {
                    Thread.sleep(Long.MAX_VALUE);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("rank " + rank + " was interrupted while stalled", e);
                }
            }
        }
    }
}
