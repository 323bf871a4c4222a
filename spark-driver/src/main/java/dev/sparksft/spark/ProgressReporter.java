package dev.sparksft.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;

/**
 * Shows training progress on the driver while the barrier stage runs: rank 0 appends one line
 * per logging step to output_dir/trainer_log.jsonl, and this thread prints each new line as
 * "step 12/40 (30.0%) | loss ... | lr ... | tok/s ... | elapsed ... | eta ...". Works the same on a
 * cluster, where rank 0's own console is an executor log nobody watches.
 */
final class ProgressReporter implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final LogSource log;
    private final PrintStream out;
    private final Thread thread;
    private int printed;
    private volatile boolean running = true;

    /** The lines of output_dir's trainer_log.jsonl so far, wherever output_dir is. */
    @FunctionalInterface
    interface LogSource {
        List<String> lines() throws IOException;
    }

    ProgressReporter(LogSource log, PrintStream out) {
        this.log = log;
        this.out = out;
        this.thread = new Thread(this::loop, "spark-sft-progress");
        thread.setDaemon(true);
        thread.start();
    }

    private void loop() {
        while (running) {
            poll();
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private synchronized void poll() {
        List<String> lines;
        try {
            lines = log.lines();
        } catch (IOException | RuntimeException e) {
            return; // rank 0 is rewriting it (a resumed attempt); next poll
        }
        if (lines.size() < printed) {
            printed = 0;   // a retried attempt truncated the log to its checkpoint; lines up to it are shown again
        }
        for (int i = printed; i < lines.size(); i++) {
            String line = lines.get(i);
            if (!line.isBlank() && !line.endsWith("}")) {
                break;   // a line still being written
            }
            printed = i + 1;
            if (!line.isBlank()) {
                out.println(format(line));
            }
        }
    }

    static String format(String line) {
        try {
            JsonNode r = JSON.readTree(line);
            StringBuilder s = new StringBuilder("[spark-sft] step ").append(r.path("current_steps").asLong()).append('/')
                    .append(r.path("total_steps").asLong()).append(" (").append(r.path("percentage").asDouble()).append("%)");
            if (r.has("loss")) {
                s.append(" | loss ").append(String.format("%.4f", r.get("loss").asDouble()))
                        .append(" | lr ").append(String.format("%.3e", r.path("lr").asDouble()))
                        .append(" | ").append(r.path("tokens_per_second").asLong()).append(" tok/s");
            }
            r.fieldNames().forEachRemaining(k -> {
                if (k.startsWith("eval_")) {
                    s.append(" | ").append(k).append(' ').append(r.get(k).asText());
                }
            });
            return s.append(" | elapsed ").append(r.path("elapsed_time").asText()).append(" | eta ")
                    .append(r.path("remaining_time").asText()).toString();
        } catch (IOException e) {
            return "[spark-sft] " + line;
        }
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        poll();   // the last lines
    }
}
