package dev.sparksft.train;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Tensor;

/**
 * {@code checkpoint-<step>/} directories (docs/ARCHITECTURE.md invariant 5): the model in HF layout (loadable
 * on its own), optimizer state ({@code optimizer.safetensors}), and {@code trainer_state.json},
 * which holds the step, the data position, the schedule and the seed the batch plan derives its
 * permutations from (the only randomness of training). Written into a temporary directory and
 * renamed, so a checkpoint either exists whole or not at all.
 */
public final class Checkpoints {
    public static final String OPTIMIZER_FILE = "optimizer.safetensors";
    public static final String STATE_FILE = "trainer_state.json";
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    private static final ObjectMapper JSON = new ObjectMapper();

    private Checkpoints() {}

    /** A loaded checkpoint: where, the optimizer tensors and the trainer state. */
    public record Loaded(Path dir, Map<String, Tensor> optimizerState, ObjectNode trainerState) {
        public long step() {
            return trainerState.get("global_step").asLong();
        }
    }

    /** @param optimizerState the whole optimizer state (under ZeRO: gathered from every rank's share) */
    public static Path save(Outputs outputs, long step, CausalLm model, Map<String, Tensor> optimizerState,
                            ObjectNode trainerState) throws IOException {
        Path target = outputs.dir().resolve("checkpoint-" + step);
        Path tmp = outputs.dir().resolve(".checkpoint-" + step + ".tmp");
        deleteRecursively(tmp);
        Files.createDirectories(tmp);
        outputs.writeModel(tmp, model);
        Safetensors.write(tmp.resolve(OPTIMIZER_FILE), optimizerState);
        Files.writeString(tmp.resolve(STATE_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(trainerState));
        deleteRecursively(target); // a rerun of the same step replaces the old copy
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        outputs.published(target);
        return target;
    }

    /** resume_from_checkpoint: a path, "true" for the latest checkpoint of output_dir, or nothing (null). */
    public static Path resumeDir(String resume, Path outputDir) throws IOException {
        if (!resumes(resume)) {
            return null;
        }
        if (resumesLatest(resume)) {
            return latest(outputDir).orElseThrow(() -> noCheckpoint(outputDir.toString()));
        }
        Path p = Path.of(resume);
        if (!Files.isDirectory(p)) {
            throw new UserError("resume_from_checkpoint: " + resume + " is not a directory");
        }
        return p;
    }

    /** Whether resume_from_checkpoint asks for a resume at all (unset and "false" do not). */
    public static boolean resumes(String resume) {
        return resume != null && !resume.equalsIgnoreCase("false");
    }

    /** resume_from_checkpoint: true, HF's spelling for the newest checkpoint of output_dir. */
    public static boolean resumesLatest(String resume) {
        return resume != null && resume.equalsIgnoreCase("true");
    }

    /** resume_from_checkpoint: true where output_dir has no checkpoint. */
    public static UserError noCheckpoint(String outputDir) {
        return new UserError("resume_from_checkpoint: true, but output_dir " + outputDir + " holds no checkpoint-N directory");
    }

    /** The checkpoint with the highest step in {@code outputDir}, if any. */
    public static Optional<Path> latest(Path outputDir) throws IOException {
        return list(outputDir).stream().reduce((a, b) -> b);
    }

    /** Complete checkpoints, by step. */
    public static List<Path> list(Path outputDir) throws IOException {
        if (!Files.isDirectory(outputDir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(outputDir)) {
            return s.filter(p -> NAME.matcher(p.getFileName().toString()).matches() && Files.isDirectory(p)
                            && Files.exists(p.resolve(STATE_FILE)))
                    .sorted(Comparator.comparingLong(Checkpoints::stepOf)).toList();
        }
    }

    /** Keeps the newest {@code limit} checkpoints. */
    public static void rotate(Outputs outputs, int limit) throws IOException {
        List<Path> all = new ArrayList<>(list(outputs.dir()));
        while (all.size() > limit) {
            Path oldest = all.remove(0);
            deleteRecursively(oldest);
            outputs.removed(oldest);
        }
    }

    public static Loaded load(Path dir) throws IOException {
        Path state = dir.resolve(STATE_FILE);
        Path optimizer = dir.resolve(OPTIMIZER_FILE);
        if (!Files.isRegularFile(state) || !Files.isRegularFile(optimizer)) {
            throw new UserError("resume_from_checkpoint: " + dir + " is not a spark-sft checkpoint (it needs "
                    + STATE_FILE + " and " + OPTIMIZER_FILE + ")");
        }
        JsonNode s = JSON.readTree(state.toFile());
        Safetensors.Header header = Safetensors.readHeader(optimizer);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Safetensors.Entry e : header.entries().values()) {
            tensors.put(e.name(), Safetensors.readTensor(header, e));
        }
        return new Loaded(dir, tensors, (ObjectNode) s);
    }

    /** The global_step a checkpoint was written at (its trainer_state.json). */
    public static long step(Path dir) throws IOException {
        Path state = dir.resolve(STATE_FILE);
        if (!Files.isRegularFile(state)) {
            throw new UserError("resume_from_checkpoint: " + dir + " is not a spark-sft checkpoint (it needs "
                    + STATE_FILE + ")");
        }
        return JSON.readTree(state.toFile()).path("global_step").asLong();
    }

    static long stepOf(Path p) {
        return stepOf(p.getFileName().toString());
    }

    /** N of a "checkpoint-N" name; -1 for any other name. */
    public static long stepOf(String name) {
        Matcher m = NAME.matcher(name);
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** Deletes a file or a folder with everything in it (nothing when it does not exist). */
    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }
}
