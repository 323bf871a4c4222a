package dev.sparksft.train;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Safetensors;
import dev.sparksft.runtime.DiskWrites;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code checkpoint-<step>/} directories (docs/ARCHITECTURE.md invariant 5): the model in HF layout (loadable
 * on its own), optimizer state ({@code optimizer.safetensors}), and {@code trainer_state.json},
 * which holds the step, the data position, the schedule and the seed the batch plan derives its
 * permutations from (the only randomness of training). Written into a temporary directory and
 * renamed, so a checkpoint either exists whole or not at all; {@code checksums.json} holds each
 * file's size and CRC32C, compared before a checkpoint is resumed from (a damaged file is named,
 * never trained on).
 */
public final class Checkpoints {
    public static final String OPTIMIZER_FILE = "optimizer.safetensors";
    public static final String STATE_FILE = "trainer_state.json";
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Logger LOG = LoggerFactory.getLogger(Checkpoints.class);

    private Checkpoints() {}

    /** A loaded checkpoint: where, the optimizer tensors and the trainer state. */
    public record Loaded(Path dir, Map<String, Tensor> optimizerState, ObjectNode trainerState) {
        public long step() {
            return trainerState.get("global_step").asLong();
        }
    }

    /**
     * @param optimizerState the whole optimizer state (under ZeRO: gathered from every rank's share), or null for
     *                       a checkpoint without it (save_only_model)
     */
    public static Path save(Outputs outputs, long step, CausalLm model, Map<String, Tensor> optimizerState,
                            ObjectNode trainerState) throws IOException {
        Path target = outputs.dir().resolve("checkpoint-" + step);
        Path tmp = outputs.dir().resolve(".checkpoint-" + step + ".tmp");
        try {
            deleteRecursively(tmp);
            Files.createDirectories(tmp);
            Map<String, Long> checksums = new LinkedHashMap<>(outputs.writeModel(tmp, model));
            if (optimizerState != null) {
                checksums.put(OPTIMIZER_FILE, Safetensors.write(tmp.resolve(OPTIMIZER_FILE), optimizerState));
            }
            DiskWrites.writeString(tmp.resolve(STATE_FILE),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(trainerState));
            Checksums.write(tmp, checksums);
        } catch (IOException e) {
            // a full disk: the half-written folder goes, the checkpoints already there stay as they were
            try {
                deleteRecursively(tmp);
            } catch (IOException d) {
                e.addSuppressed(d);
            }
            throw new IOException("could not save checkpoint-" + step + " in output_dir " + outputs.dir() + ": "
                    + e.getMessage() + " (the checkpoints already there are unchanged)", e);
        }
        deleteRecursively(target); // a rerun of the same step replaces the old copy
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        outputs.published(target);
        return target;
    }

    /**
     * resume_from_checkpoint: a path (refused when its files do not match their checksums), "true"
     * for the newest intact checkpoint of output_dir, or nothing (null).
     */
    public static Path resumeDir(String resume, Path outputDir) throws IOException {
        if (!resumes(resume)) {
            return null;
        }
        if (resumesLatest(resume)) {
            List<String> names = list(outputDir).stream().map(p -> p.getFileName().toString()).toList();
            return newestIntact(names, outputDir::resolve, outputDir.toString(), true)
                    .orElseThrow(() -> noCheckpoint(outputDir.toString()));
        }
        Path p = Path.of(resume);
        if (!Files.isDirectory(p)) {
            throw new UserError("resume_from_checkpoint: " + resume + " is not a directory");
        }
        Optional<String> problem = verify(p, resume);
        if (problem.isPresent()) {
            throw new UserError("resume_from_checkpoint: " + resume + " is corrupt: " + problem.get()
                    + "; resume from another checkpoint");
        }
        return p;
    }

    /** Where a checkpoint of output_dir named "checkpoint-N" is read from (downloaded first when output_dir is remote). */
    @FunctionalInterface
    public interface Fetch {
        Path local(String name) throws IOException;
    }

    /**
     * The newest checkpoint among {@code names} (checkpoint-N of output_dir) whose files match their
     * checksums, each read through {@code fetch}, newest first. Each corrupt one is named in the log
     * with what is wrong, and so is the fallback. With none intact, a run that asked to resume
     * ({@code required}: resume_from_checkpoint: true) is refused naming every one; a retried Spark
     * stage ({@code required} false) gets nothing and starts where its first attempt started.
     *
     * @return empty when {@code names} is empty, or (not required) when none is intact
     */
    public static Optional<Path> newestIntact(List<String> names, Fetch fetch, String outputDir, boolean required)
            throws IOException {
        List<String> newestFirst = names.stream()
                .sorted(Comparator.comparingLong((String n) -> stepOf(n)).reversed()).toList();
        List<String> corrupt = new ArrayList<>();
        for (String name : newestFirst) {
            Path dir = fetch.local(name);
            Optional<String> problem = verify(dir, outputDir.replaceAll("/+$", "") + "/" + name);
            if (problem.isEmpty()) {
                if (!corrupt.isEmpty()) {
                    LOG.warn("resuming from {} of output_dir {}, the newest intact checkpoint (skipped as corrupt: {})",
                            name, outputDir, String.join(", ", newestFirst.subList(0, corrupt.size())));
                }
                return Optional.of(dir);
            }
            LOG.warn("{} of output_dir {} is corrupt and is not resumed from: {}", name, outputDir, problem.get());
            corrupt.add(name + " (" + problem.get() + ")");
        }
        if (corrupt.isEmpty()) {
            return Optional.empty();
        }
        if (required) {
            throw new UserError("resume_from_checkpoint: true, but no checkpoint of output_dir " + outputDir
                    + " is intact: " + String.join("; ", corrupt) + ". Resume from a checkpoint you trust "
                    + "(resume_from_checkpoint: PATH), or start again with overwrite_output_dir: true");
        }
        LOG.warn("no checkpoint of output_dir {} is intact; starting where the run started", outputDir);
        return Optional.empty();
    }

    /**
     * What is wrong with checkpoint {@code dir} against its checksums (empty when nothing is), naming
     * it {@code shownAs}. A checkpoint without them (older spark-sft versions, other trainers) is
     * accepted, with a note.
     */
    public static Optional<String> verify(Path dir, String shownAs) throws IOException {
        if (!Checksums.present(dir)) {
            LOG.info("{} has no {} (saved by an older version or another trainer): its files are not verified",
                    shownAs, Checksums.FILE);
            return Optional.empty();
        }
        return Checksums.problem(dir, shownAs);
    }

    /**
     * Whether the trainer saves a checkpoint after step {@code done} (1-based) before the last: every
     * save_steps (save_strategy: steps) or at each epoch's end (epoch). The last step is always
     * saved unless save_strategy is no.
     */
    public static boolean savesBeforeTheEnd(TrainingArguments args, long done, long stepsPerEpoch) {
        return args.saveStrategy().equals("steps") && done % args.saveSteps() == 0
                || args.saveStrategy().equals("epoch") && done % stepsPerEpoch == 0;
    }

    /** How many checkpoints a run that trains steps {@code fromStep}+1 .. {@code totalSteps} saves. */
    public static long numSaves(TrainingArguments args, long fromStep, long totalSteps, long stepsPerEpoch) {
        if (args.saveStrategy().equals("no")) {
            return 0;
        }
        long every = args.saveStrategy().equals("steps") ? args.saveSteps() : stepsPerEpoch;
        // the multiples of every in (fromStep, totalSteps), and the last step (saved even when resumed there)
        return Math.max(0, (totalSteps - 1) / every - fromStep / every) + 1;
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
        if (!Files.isRegularFile(state)) {
            throw new UserError("resume_from_checkpoint: " + dir + " is not a spark-sft checkpoint (it needs "
                    + STATE_FILE + ", and " + OPTIMIZER_FILE + " unless it was saved with save_only_model)");
        }
        JsonNode s = JSON.readTree(state.toFile());
        Map<String, Tensor> tensors = new LinkedHashMap<>();   // empty: saved with save_only_model
        if (Files.isRegularFile(optimizer)) {
            Safetensors.Header header = Safetensors.readHeader(optimizer);
            for (Safetensors.Entry e : header.entries().values()) {
                tensors.put(e.name(), Safetensors.readTensor(header, e));
            }
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
