package dev.sparksft.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.LocalRun;
import dev.sparksft.config.SftConfig;
import dev.sparksft.dist.Rendezvous;
import dev.sparksft.dist.World;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.TrainerLog;
import java.io.BufferedWriter;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.sql.SparkSession;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * What Spark costs: the same training work (a ~20M-parameter Llama, sequences of ~500 tokens,
 * global batch 4, AdamW) once in a single process with 2 BLAS threads and once as a Spark job in
 * local[2] with 2 ranks of 1 thread each; then the Gloo all-reduce bandwidth between 2 ranks for
 * a gradient of the model's size. Per-step times come from the steady-state tokens/s of
 * trainer_log.jsonl (the first step, a warm-up, excluded); fixed startup is the wall time not
 * spent in those steps (Spark: session start, reading, tokenizing, slotting, rendezvous, model
 * load, final save). Prints markdown tables.
 *
 * <p>{@code SparkBench overlap [STEPS (10)]}: gradient reduction overlapped with the backward
 * (overlap_gradient_reduction) against after it, in the same Spark local[2] job (2 ranks x 1
 * thread), with and without activation checkpointing, on the same model at 1 x 128 tokens per
 * rank and step, so that communication is a visible share of a step; each setting runs 3 times,
 * alternating off and on, and its per-step time is the median over every timed step of its runs
 * (the host's neighbours make single steps noisy). The communication time is the Gloo all-reduce
 * of the whole gradient with nothing else running; the hidden share is (t_off - t_on) / t_comm.
 *
 * <p>Usage: SparkBench [STEPS (6)] | SparkBench overlap [STEPS (10)]
 */
public final class SparkBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SparkBench() {}

    /** A run: wall time, the training loop's time (Trainer.Result.runtime), steady-state tokens/s. */
    record Run(double wallSeconds, double loopSeconds, double tokensPerSecond, int steps) {
        double stepSeconds() {
            return loopSeconds / steps;
        }

        /** Everything but the training loop: startup, data, model load, final save. */
        double startupSeconds() {
            return wallSeconds - loopSeconds;
        }
    }

    public static void main(String[] args) throws Exception {
        boolean overlap = args.length > 0 && args[0].equals("overlap");
        int steps = args.length > (overlap ? 1 : 0) ? Integer.parseInt(args[overlap ? 1 : 0]) : overlap ? 10 : 6;
        Path dir = Files.createTempDirectory("spark-bench");
        Torch.load(2, 1);
        TinyModel.write(new TinyModel.Options("llama", dir.resolve("model"), 0, 512, 6, 8, 8, 1408, null, 256,
                500000));
        writeDataset(dir.resolve("data/long.jsonl"), 64, 480);
        String yaml = "model_name_or_path: " + dir.resolve("model") + "\ntemplate: chatml\ndataset: long.jsonl\n"
                + "dataset_dir: " + dir.resolve("data") + "\ncutoff_len: 512\nstage: sft\ndo_train: true\n"
                + "finetuning_type: full\nlogging_steps: 1\nsave_strategy: \"no\"\nlearning_rate: 1.0e-4\n"
                + "max_steps: " + steps + "\nintra_op_threads: 1\noverwrite_output_dir: true\n";
        Path config = dir.resolve("bench.yaml");
        Files.writeString(config, yaml);
        if (overlap) {
            overlapTable(dir, config, steps);
            return;
        }

        long t0 = System.nanoTime();
        double singleLoop = LocalRun.run(SftConfig.load(config, List.of("output_dir=" + dir.resolve("single"),
                "per_device_train_batch_size=4", "num_threads=2"))).runtimeSeconds();
        Run single = run(dir.resolve("single"), t0, singleLoop, steps);

        long t1 = System.nanoTime();
        SparkSession spark = SparkSession.builder().master("local[2]").appName("spark-sft-bench")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").config("spark.barrier.sync.timeout", "300s")
                .getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        double sessionSeconds = (System.nanoTime() - t1) / 1e9;
        ObjectNode values = SftConfig.loadValues(config, List.of("output_dir=" + dir.resolve("spark"),
                "per_device_train_batch_size=2", "world_size=2"));
        List<String> ranks = TrainingJob.run(spark, values, new PrintStream(new ByteArrayOutputStream(), true));
        Run distributed = run(dir.resolve("spark"), t1, JSON.readTree(ranks.get(0)).get("runtime").asDouble(), steps);
        spark.stop();

        long gradientFloats = ModelWeights.expectedShapes(ModelConfig.load(dir.resolve("model"))).values().stream()
                .mapToLong(shape -> java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)).sum();
        double[] gloo = glooAllReduce(gradientFloats, 5);

        System.out.println("| run | ranks x threads | tokens/s | s/step | wall s | fixed startup s |");
        System.out.println("| --- | --- | --- | --- | --- | --- |");
        System.out.printf("| single process | 1 x 2 | %.0f | %.2f | %.1f | %.1f |%n", single.tokensPerSecond(),
                single.stepSeconds(), single.wallSeconds(), single.startupSeconds());
        System.out.printf("| Spark local[2] | 2 x 1 | %.0f | %.2f | %.1f | %.1f (session %.1f) |%n",
                distributed.tokensPerSecond(), distributed.stepSeconds(), distributed.wallSeconds(),
                distributed.startupSeconds(), sessionSeconds);
        System.out.println();
        System.out.println("| Spark overhead | measured | target |");
        System.out.println("| --- | --- | --- |");
        System.out.printf("| per step (steady-state tokens/s vs single process, same total threads) | %+.1f%% | <= 10%% |%n",
                100 * (single.tokensPerSecond() / distributed.tokensPerSecond() - 1));
        System.out.printf("| fixed startup (Spark minus single process) | %.1f s | <= 15 s |%n",
                distributed.startupSeconds() - single.startupSeconds());
        System.out.printf("| Gloo all-reduce, 2 ranks, %.1f MB (the gradient) | %.2f GB/s (%.0f ms) | |%n",
                gradientFloats * 4 / 1e6, gloo[0], gloo[1] * 1000);
        System.out.printf("(%d steps of global batch 4, sequences up to 512 tokens, %.1fM parameters; s/step includes "
                + "the first, warm-up step)%n", steps, gradientFloats / 1e6);
    }

    /** The overlap table (see the class comment): rows per checkpointing and overlap setting, then the hidden share. */
    private static void overlapTable(Path dir, Path config, int steps) throws Exception {
        int cutoff = 128;                      // every row is longer: each example is cutoff tokens
        int tokensPerStep = 2 * cutoff;        // 2 ranks x 1 example
        int repeats = 3;
        SparkSession spark = SparkSession.builder().master("local[2]").appName("spark-sft-bench-overlap")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").config("spark.barrier.sync.timeout", "600s")
                .getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        Map<String, List<Double>> stepSeconds = new java.util.LinkedHashMap<>();   // "ckpt/overlap" -> every timed step
        int run = 0;
        for (int repeat = 0; repeat < repeats; repeat++) {
            for (boolean checkpointing : new boolean[] {true, false}) {
                for (boolean overlapOn : new boolean[] {false, true}) {
                    Path out = dir.resolve("overlap-" + run++);
                    ObjectNode values = SftConfig.loadValues(config, List.of("output_dir=" + out,
                            "per_device_train_batch_size=1", "world_size=2", "cutoff_len=" + cutoff,
                            "overlap_gradient_reduction=" + overlapOn,
                            "disable_gradient_checkpointing=" + !checkpointing));
                    TrainingJob.run(spark, values, new PrintStream(new ByteArrayOutputStream(), true));
                    List<Double> times = stepSeconds.computeIfAbsent((checkpointing ? "on" : "off") + "/"
                            + (overlapOn ? "on" : "off"), k -> new ArrayList<>());
                    List<String> lines = Files.readAllLines(out.resolve(TrainerLog.FILE));
                    for (String line : lines.subList(1, lines.size())) {   // the first step warms up
                        JsonNode row = JSON.readTree(line);
                        if (row.has("tokens_per_second")) {
                            times.add(tokensPerStep / row.get("tokens_per_second").asDouble());
                        }
                    }
                }
            }
        }
        spark.stop();
        long gradientFloats = ModelWeights.expectedShapes(ModelConfig.load(dir.resolve("model"))).values().stream()
                .mapToLong(shape -> java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)).sum();
        double comm = glooAllReduce(gradientFloats, 5)[1];
        System.out.println("| activation checkpointing | overlap_gradient_reduction | s/step median | min | max | timed steps |");
        System.out.println("| --- | --- | --- | --- | --- | --- |");
        stepSeconds.forEach((k, v) -> System.out.printf("| %s | %s | %.3f | %.3f | %.3f | %d |%n", k.split("/")[0],
                k.split("/")[1], median(v), java.util.Collections.min(v), java.util.Collections.max(v), v.size()));
        System.out.println();
        System.out.println("| activation checkpointing | t_comm s (Gloo all-reduce of the gradient, idle ranks) | t_off - t_on s (medians) | hidden share (t_off - t_on) / t_comm |");
        System.out.println("| --- | --- | --- | --- |");
        for (String c : new String[] {"on", "off"}) {
            double saved = median(stepSeconds.get(c + "/off")) - median(stepSeconds.get(c + "/on"));
            System.out.printf("| %s | %.3f | %+.3f | %.0f%% |%n", c, comm, saved, 100 * saved / comm);
        }
        System.out.printf("(Spark local[2], 2 ranks x 1 thread, %.1fM parameters (%.0f MB of float32 gradient), %d runs of "
                + "%d steps per setting, alternating off and on, 1 x %d tokens per rank and step, the first step of a "
                + "run a warm-up)%n", gradientFloats / 1e6, gradientFloats * 4 / 1e6, repeats, steps, cutoff);
    }

    private static double median(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        java.util.Collections.sort(sorted);
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** Steady-state tokens/s from trainer_log.jsonl (rows after the first, a warm-up). */
    private static Run run(Path out, long startNanos, double loopSeconds, int steps) throws Exception {
        double wall = (System.nanoTime() - startNanos) / 1e9;
        List<String> lines = Files.readAllLines(out.resolve(TrainerLog.FILE));
        double tokensPerSecond = 0;
        int n = 0;
        for (String line : lines.subList(1, lines.size())) {
            JsonNode row = JSON.readTree(line);
            if (row.has("tokens_per_second")) {
                tokensPerSecond += row.get("tokens_per_second").asDouble();
                n++;
            }
        }
        return new Run(wall, loopSeconds, tokensPerSecond / n, steps);
    }

    /** Rows of random lowercase text: ~{@code letters} letters of answer each, so sequences hit cutoff_len. */
    private static void writeDataset(Path file, int rows, int letters) throws Exception {
        Files.createDirectories(file.getParent());
        Random rng = new Random(0);
        try (BufferedWriter w = Files.newBufferedWriter(file)) {
            for (int r = 0; r < rows; r++) {
                StringBuilder s = new StringBuilder();
                for (int i = 0; i < letters; i++) {
                    s.append((char) ('a' + rng.nextInt(26)));
                }
                w.write(JSON.writeValueAsString(Map.of("instruction", "Copy", "input", s.substring(0, 32),
                        "output", s.toString())) + "\n");
            }
        }
    }

    /** GB/s and seconds of a SUM all-reduce of {@code floats} float32 values between 2 local ranks (best of n). */
    static double[] glooAllReduce(long floats, int n) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, Duration.ofSeconds(60))) {
            List<Future<Double>> results = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                results.add(pool.submit(() -> {
                    try (World w = World.join(rank, 2, rv.address(), "127.0.0.1",
                            new org.bytedeco.pytorch.Device(torch.DeviceType.CPU), Duration.ofSeconds(60))) {
                        Tensor t = torch.ones(floats);
                        double best = Double.MAX_VALUE;
                        for (int i = 0; i <= n; i++) {
                            long s = System.nanoTime();
                            w.allReduceSumInPlace(List.of(t));
                            double sec = (System.nanoTime() - s) / 1e9;
                            if (i > 0) {
                                best = Math.min(best, sec);
                            }
                        }
                        return best;
                    }
                }));
            }
            double seconds = Math.max(results.get(0).get(), results.get(1).get());
            return new double[] {floats * 4 / seconds / 1e9, seconds};
        } finally {
            pool.shutdownNow();
        }
    }
}
