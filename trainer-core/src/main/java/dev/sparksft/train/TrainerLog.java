package dev.sparksft.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.runtime.DiskWrites;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a run reports: a console progress line, LLaMA-Factory's {@code trainer_log.jsonl} (one
 * line per logging or evaluation step), and the Hugging Face {@code log_history} that goes into
 * {@code trainer_state.json}. A resumed run keeps the lines up to its checkpoint and appends.
 */
public final class TrainerLog {
    public static final String FILE = "trainer_log.jsonl";
    private static final Logger LOG = LoggerFactory.getLogger(TrainerLog.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final int RECENT = 20;

    private final Path file;                  // null on ranks other than 0: they only log to the console
    private final String prefix;
    private final java.util.function.Consumer<Path> onWrite;
    private final java.util.ArrayDeque<String> recent = new java.util.ArrayDeque<>();
    private final long totalSteps;
    private final ArrayNode history;
    private final long startNanos = System.nanoTime();
    private final long startStep;

    /**
     * @param outputDir where trainer_log.jsonl goes; null for a rank that does not write it
     * @param rankPrefix put before every console line ("" for one rank, "rank 1: " for several)
     * @param history   log_history restored from a checkpoint (empty for a new run)
     * @param onWrite   told after every line written to trainer_log.jsonl
     */
    public TrainerLog(Path outputDir, String rankPrefix, long totalSteps, long startStep, ArrayNode history,
                      java.util.function.Consumer<Path> onWrite) throws IOException {
        this.file = outputDir == null ? null : outputDir.resolve(FILE);
        this.onWrite = onWrite;
        this.prefix = rankPrefix;
        this.totalSteps = totalSteps;
        this.startStep = startStep;
        this.history = history;
        if (file == null) {
            return;
        }
        List<String> kept = new ArrayList<>();
        if (startStep > 0 && Files.exists(file)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (!line.isBlank() && JSON.readTree(line).path("current_steps").asLong() <= startStep) {
                    kept.add(line);
                }
            }
        }
        Files.write(file, kept, StandardCharsets.UTF_8);
    }

    public ArrayNode history() {
        return history;
    }

    /** A training log row after {@code step} updates. */
    public void train(long step, double epoch, double loss, double lr, double gradNorm, double tokensPerSecond)
            throws IOException {
        ObjectNode h = history.addObject();
        h.put("loss", loss).put("grad_norm", gradNorm).put("learning_rate", lr).put("epoch", round(epoch, 4))
                .put("step", step);
        ObjectNode row = row(step, epoch);
        long rssMb = residentMegabytes();
        row.put("loss", round(loss, 4)).put("lr", lr).put("grad_norm", round(gradNorm, 4))
                .put("tokens_per_second", Math.round(tokensPerSecond)).put("rss_mb", rssMb);
        append(row);
        console(String.format("step %d/%d | loss %.4f | lr %.3e | grad_norm %.3f | %d tok/s | epoch %.2f | rss %d MB"
                        + " | elapsed %s | eta %s", step, totalSteps, loss, lr, gradNorm, Math.round(tokensPerSecond), epoch,
                rssMb, row.get("elapsed_time").asText(), row.get("remaining_time").asText()));
    }

    /** An evaluation row; metric names without the eval_ prefix. */
    public void eval(long step, double epoch, Map<String, Double> metrics) throws IOException {
        ObjectNode h = history.addObject();
        ObjectNode row = row(step, epoch);
        StringBuilder line = new StringBuilder("eval at step " + step + ":");
        metrics.forEach((k, v) -> {
            h.put("eval_" + k, v);
            row.put("eval_" + k, round(v, 4));
            line.append(' ').append("eval_").append(k).append(' ').append(String.format("%.4f", v));
        });
        h.put("epoch", round(epoch, 4)).put("step", step);
        append(row);
        console(line.toString());
    }

    /** Logs a line to the console and keeps it among the {@link #recentLines}. */
    public void console(String line) {
        LOG.info("{}{}", prefix, line);
        synchronized (recent) {
            if (recent.size() == RECENT) {
                recent.removeFirst();
            }
            recent.addLast(line);
        }
    }

    /** The last lines this rank logged, oldest first: what an error report about this rank shows. */
    public List<String> recentLines() {
        synchronized (recent) {
            return List.copyOf(recent);
        }
    }

    private ObjectNode row(long step, double epoch) {
        double elapsed = (System.nanoTime() - startNanos) / 1e9;
        double perStep = elapsed / Math.max(1, step - startStep);
        ObjectNode row = JSON.createObjectNode();
        row.put("current_steps", step).put("total_steps", totalSteps).put("epoch", round(epoch, 2))
                .put("percentage", round(100.0 * step / totalSteps, 2))
                .put("elapsed_time", hms(elapsed)).put("remaining_time", hms(perStep * (totalSteps - step)));
        return row;
    }

    private void append(JsonNode row) throws IOException {
        if (file == null) {
            return;
        }
        DiskWrites.writeString(file, JSON.writeValueAsString(row) + "\n", StandardOpenOption.APPEND);
        onWrite.accept(file);
    }

    /** Loss points of the training rows, for the plot. */
    public List<double[]> lossCurve() {
        List<double[]> points = new ArrayList<>();
        history.forEach(h -> {
            if (h.has("loss")) {
                points.add(new double[] {h.get("step").asDouble(), h.get("loss").asDouble()});
            }
        });
        return points;
    }

    /**
     * Resident memory of this process in MB (VmRSS of /proc/self/status; -1 where there is none).
     * Logged because libtorch's native allocations are invisible to the JVM's own counters.
     */
    static long residentMegabytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** "H:MM:SS" as Python's str(timedelta) prints whole seconds. */
    static String hms(double seconds) {
        long s = Math.max(0, Math.round(seconds));
        return String.format("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    static double round(double v, int places) {
        double scale = Math.pow(10, places);
        return Math.round(v * scale) / scale;
    }
}
