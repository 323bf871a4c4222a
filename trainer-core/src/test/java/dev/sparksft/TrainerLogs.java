package dev.sparksft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** What a run's trainer_log.jsonl says, for tests of either shell. */
public final class TrainerLogs {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainerLogs() {}

    /** The logged step losses of the run whose output_dir is {@code out}, in order. */
    public static List<Double> losses(Path out) throws IOException {
        List<Double> losses = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("trainer_log.jsonl"))) {
            JsonNode row = JSON.readTree(line);
            if (row.has("loss")) {
                losses.add(row.get("loss").asDouble());
            }
        }
        return losses;
    }
}
