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
 * "RANK:STEP" makes rank RANK stop answering at step STEP, or before it joins the process group
 * when STEP is "join"; it waits until Spark kills the task, as a hung rank would.
 */
final class FaultInjection {
    static final String FAIL = "spark-sft.test.fail";
    static final String STALL = "spark-sft.test.stall";

    private final TaskContext task;
    private final String fail;
    private final String stall;

    private FaultInjection(TaskContext task, String fail, String stall) {
        this.task = task;
        this.fail = fail;
        this.stall = stall;
    }

    /** The hooks of the current task (none outside a task). */
    static FaultInjection ofTask() {
        TaskContext ctx = TaskContext.get();
        return ctx == null ? new FaultInjection(null, null, null)
                : new FaultInjection(ctx, ctx.getLocalProperty(FAIL), ctx.getLocalProperty(STALL));
    }

    void beforeJoin(int rank) {
        if (stall != null && stall.equals(rank + ":join")) {
            stallUntilKilled(rank);
        }
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
        if (stall != null && stall.equals(rank + ":" + step)) {
            stallUntilKilled(rank);
        }
    }

    private void stallUntilKilled(int rank) {
        try {
            while (!task.isInterrupted()) {
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        throw new IllegalStateException("rank " + rank + " was stalled by the test hook until Spark killed it");
    }
}
