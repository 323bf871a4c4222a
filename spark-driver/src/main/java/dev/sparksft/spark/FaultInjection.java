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
 * when STEP is "join": its heartbeat stops and it waits until Spark kills the task, as a hung
 * process would. {@code spark-sft.test.slow} = "RANK:STEP:SECONDS" makes rank RANK spend SECONDS
 * before step STEP while its heartbeat beats on, as a long checkpoint save or evaluation does.
 * {@code spark-sft.test.die} = "RANK:STEP:MARKER" halts rank RANK's JVM at step STEP once, as a
 * killed executor (only meaningful with separate executor JVMs: local-cluster or a cluster).
 * {@code spark-sft.test.fail-prediction} = "PARTITION:0:MARKER" fails that prediction task once.
 */
final class FaultInjection {
    static final String FAIL = "spark-sft.test.fail";
    static final String STALL = "spark-sft.test.stall";
    static final String DIE = "spark-sft.test.die";
    static final String SLOW = "spark-sft.test.slow";
    static final String FAIL_PREDICTION = "spark-sft.test.fail-prediction";

    private final TaskContext task;
    private final String fail;
    private final String stall;
    private final String die;
    private final String slow;
    private final String failPrediction;
    private final Runnable stopHeartbeat;

    private FaultInjection(TaskContext task, String fail, String stall, String die, String slow, String failPrediction,
            Runnable stopHeartbeat) {
        this.task = task;
        this.fail = fail;
        this.stall = stall;
        this.die = die;
        this.slow = slow;
        this.failPrediction = failPrediction;
        this.stopHeartbeat = stopHeartbeat;
    }

    /** The hooks of the current task (none outside a task). */
    static FaultInjection ofTask() {
        return ofTask(() -> { });
    }

    /** The hooks of the current training task, whose stall also stops its heartbeat ({@code stopHeartbeat}). */
    static FaultInjection ofTask(Runnable stopHeartbeat) {
        TaskContext ctx = TaskContext.get();
        return ctx == null ? new FaultInjection(null, null, null, null, null, null, stopHeartbeat)
                : new FaultInjection(ctx, ctx.getLocalProperty(FAIL), ctx.getLocalProperty(STALL), ctx.getLocalProperty(DIE),
                        ctx.getLocalProperty(SLOW), ctx.getLocalProperty(FAIL_PREDICTION), stopHeartbeat);
    }

    void beforePrediction(int partition) {
        if (firstTime(failPrediction, partition, 0)) {
            throw new IllegalStateException("injected failure of prediction task " + partition);
        }
    }

    /** Before the rank loads its model: "RANK:-1:MARKER" in {@code spark-sft.test.fail} fails it there once. */
    void beforeLoad(int rank) {
        if (firstTime(fail, rank, -1)) {
            throw new IllegalStateException("injected failure of rank " + rank + " while loading");
        }
    }

    void beforeJoin(int rank) {
        if (stall != null && stall.equals(rank + ":join")) {
            stallUntilKilled(rank);
        }
    }

    void beforeStep(int rank, long step) {
        if (firstTime(fail, rank, step)) {
            throw new IllegalStateException("injected failure of rank " + rank + " at step " + step);
        }
        if (firstTime(die, rank, step)) {
            Runtime.getRuntime().halt(137);   // like kill -9: no shutdown hooks, sockets closed by the OS
        }
        if (stall != null && stall.equals(rank + ":" + step)) {
            stallUntilKilled(rank);
        }
        if (slow != null && slow.startsWith(rank + ":" + step + ":")) {
            try {
                Thread.sleep(Long.parseLong(slow.split(":")[2]) * 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("rank " + rank + " was interrupted while slowed by the test hook");
            }
        }
    }

    /** Whether "RANK:STEP:MARKER" matches and its marker file did not exist yet (it does now). */
    private static boolean firstTime(String hook, int rank, long step) {
        if (hook == null) {
            return false;
        }
        String[] f = hook.split(":", 3);
        if (Integer.parseInt(f[0]) != rank || Long.parseLong(f[1]) != step) {
            return false;
        }
        try {
            Files.createFile(Path.of(f[2]));
            return true;
        } catch (java.nio.file.FileAlreadyExistsException e) {
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void stallUntilKilled(int rank) {
        stopHeartbeat.run();
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
