package dev.sparksft.spark;

import dev.sparksft.UserError;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.resource.ResourceProfile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The task slots the training stage needs: Spark launches all world_size tasks of a barrier stage
 * at once. With fewer slots Spark does not fail at once: its own check
 * (DAGScheduler.checkBarrierStageWithNumSlots) retries every
 * spark.scheduler.barrier.maxConcurrentTasksCheck.interval (15 s) up to ...maxFailures (40)
 * times, then fails with a message that names neither world_size nor the settings. So the
 * driver checks first, before any data is read: against the settings where they decide the
 * count (local masters; executors of YARN, Kubernetes or a standalone master sized by
 * spark.cores.max), then against what the running SparkContext reports, the number Spark's check
 * compares, waiting a bounded time for executors that are still registering.
 */
final class TaskSlots {
    private static final Logger LOG = LoggerFactory.getLogger(TaskSlots.class);
    private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:,\\s*\\d+)?])?");
    private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*\\d+\\s*]");

    private TaskSlots() {}

    /**
     * The slots the settings give, with how they follow from them and what would give more.
     *
     * @param how "local[2] = 2 cores / spark.task.cpus 2"
     * @param fix "lower spark.task.cpus or give more cores (--master local[4])"
     */
    record Count(int slots, String how, String fix) {}

    /**
     * Refuses a training run the cluster cannot hold: world_size concurrent tasks, every one with
     * spark.task.cpus cores (and, with device: cuda on a cluster, spark.task.resource.gpu.amount GPUs).
     */
    static void require(SparkContext sc, int worldSize, boolean cuda) {
        SparkConf conf = sc.getConf();
        Optional<Count> configured = requireBySettings(conf, sc.master(), worldSize, cuda);
        // executors the settings promise may still be registering: wait as long as Spark's own check would;
        // where the settings do not say, as long as Spark waits for executors before its first job
        long waitMs = configured.isPresent()
                ? conf.getTimeAsMs("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "15s")
                        * conf.getInt("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", 40)
                : conf.getTimeAsMs("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s");
        int running = awaitSlots(sc, worldSize, waitMs);
        if (running < worldSize) {
            throw new UserError(tooFew(worldSize, running, "the executors registered after waiting " + waitMs / 1000 + " s, "
                    + (configured.isPresent() ? "spark.scheduler.barrier.maxConcurrentTasksCheck.interval x maxFailures"
                            : "spark.scheduler.maxRegisteredResourcesWaitingTime")) + ". " + advice(running,
                    "give the application more executors or cores (spark.executor.instances, spark.executor.cores,"
                    + " spark.cores.max; each task takes spark.task.cpus " + conf.getInt("spark.task.cpus", 1)
                    + (cuda ? " and spark.task.resource.gpu.amount GPUs" : "") + ")"));
        }
    }

    /** The refusals the settings alone decide; the slots they give, where they decide it. */
    static Optional<Count> requireBySettings(SparkConf conf, String master, int worldSize, boolean cuda) {
        if (conf.getBoolean("spark.dynamicAllocation.enabled", false) && !LOCAL.matcher(master).matches()) {
            // DAGScheduler.checkBarrierStageWithDynamicAllocation refuses every barrier stage then (SPARK-24942)
            throw new UserError("world_size " + worldSize + ": training runs as a Spark barrier stage, which Spark refuses"
                    + " with dynamic allocation: set spark.dynamicAllocation.enabled=false and spark.executor.instances"
                    + " (or spark.cores.max on a standalone master) to hold " + worldSize + " tasks at once");
        }
        Optional<Count> configured = fromSettings(conf, master, cuda);
        if (configured.isPresent() && configured.get().slots() < worldSize) {
            Count c = configured.get();
            throw new UserError(tooFew(worldSize, c.slots(), c.how()) + ". " + advice(c.slots(), c.fix()));
        }
        return configured;
    }

    private static String tooFew(int worldSize, int slots, String how) {
        return "world_size " + worldSize + " needs " + worldSize + " task slots (one barrier task per rank, all running at"
                + " once), but Spark has " + slots + " (" + how + ")";
    }

    private static String advice(int slots, String fix) {
        return slots > 0 ? "Lower world_size to " + slots + " or " + fix
                : Character.toUpperCase(fix.charAt(0)) + fix.substring(1);
    }

    /** Slots of the executors registered now, as DAGScheduler's barrier check counts them. */
    private static int running(SparkContext sc) {
        // private[spark] in Scala and public in bytecode: the very number checkBarrierStageWithNumSlots compares
        ResourceProfile profile = sc.resourceProfileManager().defaultResourceProfile();
        return sc.maxNumConcurrentTasks(profile);
    }

    private static int awaitSlots(SparkContext sc, int worldSize, long waitMs) {
        long deadline = System.nanoTime() + waitMs * 1_000_000L;
        long nextLog = System.nanoTime();
        int slots = running(sc);
        while (slots < worldSize && System.nanoTime() < deadline) {
            if (System.nanoTime() >= nextLog) {
                LOG.info("waiting for executors: {} of the {} task slots world_size needs are registered", slots, worldSize);
                nextLog = System.nanoTime() + 15_000_000_000L;
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            slots = running(sc);
        }
        return slots;
    }

    /**
     * The slots {@code master} and the settings give, where they decide it: local[N] (N cores,
     * local[*] all of this machine's), local-cluster[W,C,M], YARN and Kubernetes (their executor
     * count defaults to 2 and executor cores to 1), a standalone master with spark.cores.max and
     * spark.executor.cores. Empty where only the registered executors can tell (a standalone
     * master without them).
     */
    static Optional<Count> fromSettings(SparkConf conf, String master, boolean cuda) {
        int taskCpus = conf.getInt("spark.task.cpus", 1);
        Matcher local = LOCAL.matcher(master);
        if (local.matches()) {
            // local mode schedules no GPUs: TrainingStage gives rank r GPU r
            int cores = local.group(1) == null ? 1
                    : local.group(1).equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(local.group(1));
            return Optional.of(new Count(cores / taskCpus, master + " = " + cores + " cores / spark.task.cpus " + taskCpus,
                    (taskCpus > 1 ? "lower spark.task.cpus or " : "") + "give the job more cores (--master local["
                            + "N] with N >= world_size x spark.task.cpus)"));
        }
        Matcher cluster = LOCAL_CLUSTER.matcher(master);
        if (cluster.matches()) {
            int workers = Integer.parseInt(cluster.group(1));
            return Optional.of(perExecutor(conf, Integer.parseInt(cluster.group(2)), taskCpus, cuda)
                    .times(workers, master + " = " + workers + " executors", "start more workers"));
        }
        boolean standalone = master.startsWith("spark://");
        int executorCores = conf.getInt("spark.executor.cores", standalone ? 0 : 1);
        if (standalone) {
            int coresMax = conf.getInt("spark.cores.max", 0);
            if (coresMax == 0 || executorCores == 0) {
                return Optional.empty();   // each executor takes a whole worker's cores, as many workers as are free
            }
            int executors = coresMax / executorCores;
            return Optional.of(perExecutor(conf, executorCores, taskCpus, cuda).times(executors,
                    executors + " executors (spark.cores.max " + coresMax + " / spark.executor.cores " + executorCores + ")",
                    "raise spark.cores.max"));
        }
        int instances = conf.getInt("spark.executor.instances", 2);
        return Optional.of(perExecutor(conf, executorCores, taskCpus, cuda).times(instances,
                "spark.executor.instances " + instances, "raise spark.executor.instances"));
    }

    /** Tasks one executor runs at once: cores / spark.task.cpus, and with cuda its GPUs / spark.task.resource.gpu.amount. */
    private static PerExecutor perExecutor(SparkConf conf, int cores, int taskCpus, boolean cuda) {
        int byCores = cores / taskCpus;
        String how = "spark.executor.cores " + cores + " / spark.task.cpus " + taskCpus;
        String fix = "raise spark.executor.cores" + (taskCpus > 1 ? " or lower spark.task.cpus" : "");
        double taskGpus = conf.getDouble("spark.task.resource.gpu.amount", 0);
        if (!cuda || taskGpus <= 0) {
            return new PerExecutor(byCores, how, fix);
        }
        int gpus = conf.getInt("spark.executor.resource.gpu.amount", 0);
        // a fraction below 1 shares a GPU between 1/amount tasks (Spark requires 1/amount to be whole)
        int byGpus = taskGpus < 1 ? gpus * (int) Math.round(1 / taskGpus) : (int) (gpus / taskGpus);
        return new PerExecutor(Math.min(byCores, byGpus), "min(" + how + ", spark.executor.resource.gpu.amount " + gpus
                + " / spark.task.resource.gpu.amount " + taskGpus + ")", fix + " and spark.executor.resource.gpu.amount");
    }

    private record PerExecutor(int tasks, String how, String fix) {
        Count times(int executors, String executorsHow, String moreExecutors) {
            return new Count(executors * tasks, executorsHow + " x " + how + " = " + tasks + " tasks per executor",
                    moreExecutors + ", " + fix);
        }
    }
}
