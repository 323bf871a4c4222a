package dev.sparksft.train;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Adapter;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.DiskWrites;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The output directory of a run, with LLaMA-Factory's file names: the final model in HF layout
 * (config.json, safetensors, generation_config.json, tokenizer files), checkpoint-N/,
 * trainer_log.jsonl, trainer_state.json, train_results.json, eval_results.json,
 * all_results.json and training_loss.png.
 */
public final class Outputs {
    /**
     * Copied from the source model next to every saved model and checkpoint: generation settings,
     * the tokenizer and, for a vision-language model, its processor (what the trainer's
     * SaveProcessorCallback saves: the image processor's preprocessor_config.json and the
     * processor's chat template).
     */
    static final List<String> SIDE_FILES = List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
            "preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json",
            "chat_template.json", "chat_template.jinja");
    private static final List<String> RUN_FILES = List.of(TrainerLog.FILE, Checkpoints.STATE_FILE, "train_results.json",
            "eval_results.json", "all_results.json", "training_loss.png", "config.json", ModelWeights.SINGLE_FILE,
            ModelWeights.INDEX_FILE, Adapter.WEIGHTS_FILE, Adapter.CONFIG_FILE, "pissa_init", "pissa_backup",
            "pissa_converted");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> WRITTEN_TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "added_tokens.json", "special_tokens_map.json");

    private final Path dir;
    private final Path modelDir;
    /** The run's tokenizer when tokens were added to it (its files are then written, not copied); else null. */
    private dev.sparksft.tokenizer.Tokenizer tokenizer;
    private Consumer<Path> published = p -> { };
    private Consumer<Path> removed = p -> { };

    private Outputs(Path dir, Path modelDir) {
        this.dir = dir;
        this.modelDir = modelDir;
    }

    /**
     * Opens {@code dir} for a run. A directory that already holds another run's files is refused
     * unless {@code overwrite} (those files are then removed) or the run resumes from it.
     */
    public static Outputs prepare(Path dir, Path modelDir, boolean overwrite, boolean resuming) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw notADirectory(dir.toString());
        }
        Files.createDirectories(dir);
        List<String> names;
        try (Stream<Path> s = Files.list(dir)) {
            names = s.map(p -> p.getFileName().toString()).toList();
        }
        for (String name : toReplace(dir.toString(), names, overwrite, resuming)) {
            Checkpoints.deleteRecursively(dir.resolve(name));
        }
        return new Outputs(dir, modelDir);
    }

    /**
     * {@link #prepare}'s refusals without its changes: called before the run reads anything, so a
     * run that will be refused fails at once, and one that will overwrite deletes nothing until its
     * configuration, data and model have been read (a misspelt dataset loses no previous run).
     * output_dir must be writable: found now, not after the model is loaded and a step trained.
     */
    public static void check(Path dir, boolean overwrite, boolean resuming) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw notADirectory(dir.toString());
        }
        if (Files.isDirectory(dir)) {
            toReplace(dir.toString(), names(dir), overwrite, resuming);
        }
        requireWritable(dir);
    }

    /**
     * Creates and deletes a file in {@code dir}, or in the nearest folder above it that exists (where
     * it will be created). Files.isWritable is not enough: it asks the permission bits, which root
     * passes, not the file system (a read-only mount, sysfs, a full quota).
     */
    static void requireWritable(Path dir) {
        Path existing = nearestExisting(dir);
        try {
            Files.delete(Files.createTempFile(existing, ".spark-sft-probe-", ".tmp"));
        } catch (IOException e) {
            String reason = e instanceof java.nio.file.AccessDeniedException ? "access denied"
                    : e instanceof java.nio.file.FileSystemException f && f.getReason() != null ? f.getReason()
                    : e.toString();
            throw new UserError("output_dir " + dir + " is not writable: creating a file in " + existing + " failed ("
                    + reason + "); choose another output_dir or make " + existing + " writable");
        }
    }

    /**
     * The bytes a run can write in output_dir: what its file system has free for this user, plus the
     * previous run's files that overwrite_output_dir deletes before training.
     */
    public static long freeSpace(Path dir, boolean overwrite, boolean resuming) throws IOException {
        long free = Files.getFileStore(nearestExisting(dir)).getUsableSpace();
        if (Files.isDirectory(dir)) {
            for (String name : toReplace(dir.toString(), names(dir), overwrite, resuming)) {
                try (Stream<Path> s = Files.walk(dir.resolve(name))) {
                    for (Path f : s.filter(Files::isRegularFile).toList()) {
                        free += Files.size(f);
                    }
                }
            }
        }
        return free;
    }

    private static Path nearestExisting(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p.getParent() != null && !Files.exists(p)) {
            p = p.getParent();
        }
        return p;
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).toList();
        }
    }

    /**
     * The rule for an output_dir whose entries are {@code names}, wherever it lives (a local
     * folder here, a Hadoop one for the Spark driver): another run's files refuse it unless
     * {@code overwrite}, when they are the entries to delete; a resumed run keeps everything.
     */
    public static List<String> toReplace(String outputDir, List<String> names, boolean overwrite, boolean resuming) {
        List<String> previous = names.stream().filter(Outputs::isRunFile).sorted().toList();
        if (previous.isEmpty() || resuming) {
            return List.of();
        }
        if (!overwrite) {
            throw new UserError("output_dir " + outputDir + " already holds another run (" + previous.stream().limit(4).toList()
                    + "); set overwrite_output_dir: true to replace it, or resume_from_checkpoint: true to continue it");
        }
        return previous;
    }

    /** output_dir names a file. */
    public static UserError notADirectory(String outputDir) {
        return new UserError("output_dir " + outputDir + " is a file; point output_dir at a directory");
    }

    /**
     * The output directory of a run that {@link #prepare} already checked (a training rank, which
     * runs after the driver prepared the directory, and again when Spark retries it).
     */
    public static Outputs open(Path dir, Path modelDir) {
        return new Outputs(dir, modelDir);
    }

    /**
     * Tells {@code published} about every checkpoint directory and log file this run completes in
     * {@link #dir} (and {@code removed} about checkpoints it deletes), so that a copy elsewhere (a
     * Hadoop output_dir) can follow while training runs.
     */
    public Outputs mirroredBy(Consumer<Path> published, Consumer<Path> removed) {
        this.published = published;
        this.removed = removed;
        return this;
    }

    /**
     * Saves {@code tok}'s tokenizer.json and tokenizer_config.json with every model when tokens were
     * added to it (add_tokens, add_special_tokens, a template's stop words), as LLaMA-Factory saves
     * its tokenizer; otherwise the model's tokenizer files are copied as they are.
     */
    public Outputs withTokenizer(dev.sparksft.tokenizer.Tokenizer tok) {
        this.tokenizer = tok.addedTokens().isEmpty() ? null : tok;
        return this;
    }

    void published(Path p) {
        published.accept(p);
    }

    void removed(Path p) {
        removed.accept(p);
    }

    /** Whether a file or folder of this name in output_dir belongs to a run (and makes another run refuse it). */
    public static boolean isRunFile(String name) {
        return RUN_FILES.contains(name) || name.startsWith("checkpoint-")
                || name.startsWith("model-") && name.endsWith(".safetensors");
    }

    public Path dir() {
        return dir;
    }

    /** Tokenizer and generation files of the source model, copied next to every saved model. */
    public List<Path> modelSideFiles() {
        return sideFiles(modelDir);
    }

    /** The tokenizer and generation files of the model in {@code modelDir} that a saved model gets a copy of. */
    public static List<Path> sideFiles(Path modelDir) {
        return SIDE_FILES.stream().map(modelDir::resolve).filter(Files::isRegularFile).toList();
    }

    /** The final model, loadable by the foundation loader and by transformers (PEFT for an adapter). */
    public void saveModel(CausalLm model) throws IOException {
        // written whole into a temporary folder, then each file renamed into place: a failure
        // (disk full) leaves the previous files as they were, never a torn model.safetensors
        Path tmp = dir.resolve(FINAL_TMP);
        Checkpoints.deleteRecursively(tmp);
        try {
            Files.createDirectories(tmp);
            writeModel(tmp, model);
            try (Stream<Path> files = Files.list(tmp)) {
                for (Path f : files.toList()) {
                    Files.move(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                }
            }
        } catch (IOException e) {
            throw new IOException("could not save the final model in output_dir " + dir + ": " + e.getMessage()
                    + " (the files already there are unchanged)", e);
        } finally {
            Checkpoints.deleteRecursively(tmp);
        }
    }

    /**
     * An exported full model (sft export) in this empty directory: config, weights in shards of at
     * most {@code maxShardBytes} as save_pretrained(max_shard_size) splits them, tokenizer and
     * generation files.
     */
    public void exportModel(CausalLm model, long maxShardBytes) throws IOException {
        model.config().save(dir);
        model.weights().saveSharded(dir, model.config().torchDtype(), maxShardBytes);
        copySideFiles(dir);
    }

    /** The folder a final model is written into before its files are renamed into output_dir. */
    static final String FINAL_TMP = ".final-model.tmp";

    /**
     * pissa_convert, as training starts: {@code pissa_init/}, the adapter before any step with
     * init_lora_weights true (LLaMA-Factory's PissaConvertCallback.on_train_begin).
     */
    public void savePissaInitial(CausalLm model) throws IOException {
        saveAdapterFolder("pissa_init", model.lora().initialAdapter(), model);
    }

    /**
     * pissa_convert, after the final model: {@code pissa_backup/}, the trained adapter with
     * init_lora_weights true, and {@code pissa_converted/}, the plain LoRA adapter (rank 2r) that
     * gives the trained model over the weights training started from, e.g. the original base
     * (LLaMA-Factory's PissaConvertCallback.on_train_end, PEFT's weight conversion).
     */
    public void savePissaConversion(CausalLm model) throws IOException {
        saveAdapterFolder("pissa_backup", model.lora().withDefaultInit(), model);
        saveAdapterFolder("pissa_converted", model.lora().convertedAdapter(), model);
    }

    /** An adapter folder of output_dir, written whole into a temporary folder and renamed into place. */
    private void saveAdapterFolder(String name, LoraAdapter adapter, CausalLm model) throws IOException {
        Path tmp = dir.resolve("." + name + ".tmp");
        Path target = dir.resolve(name);
        Checkpoints.deleteRecursively(tmp);
        adapter.save(tmp, model.weights(), modelDir.toString());   // the adapter alone, as PEFT's save_pretrained
        Checkpoints.deleteRecursively(target);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        published(target);
    }

    /** Temporary folders a failed or killed run left in output_dir (.checkpoint-N.tmp, the final model's). */
    public void deleteStaleTemporaries() throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(p -> p.getFileName().toString().equals(FINAL_TMP)
                    || p.getFileName().toString().matches("\\.checkpoint-\\d+\\.tmp")
                    || p.getFileName().toString().matches("\\.pissa_\\w+\\.tmp")).toList()) {
                Checkpoints.deleteRecursively(p);
            }
        }
    }

    /**
     * A complete HF model directory in {@code target}: config, weights, tokenizer and generation
     * files; for a LoRA or OFT model the PEFT adapter (adapter_model.safetensors, adapter_config.json)
     * instead of the full weights, as LLaMA-Factory saves it.
     *
     * @return the CRC32C of each safetensors file written, by file name
     */
    Map<String, Long> writeModel(Path target, CausalLm model) throws IOException {
        Map<String, Long> checksums;
        if (model.adapter() != null) {
            checksums = model.adapter().save(target, model.weights(), modelDir.toString());
        } else {
            model.config().save(target);
            checksums = model.weights().save(target, model.config().torchDtype());
        }
        copySideFiles(target);
        return checksums;
    }

    private void copySideFiles(Path target) throws IOException {
        for (Path f : modelSideFiles()) {
            String name = f.getFileName().toString();
            // with added tokens, the tokenizer's own files replace these (added_tokens.json and special_tokens_map.json
            // would name the old tokens; tokenizer_config.json says what they said)
            if (tokenizer == null || !WRITTEN_TOKENIZER_FILES.contains(name)) {
                DiskWrites.copy(f, target.resolve(name));
            }
        }
        if (tokenizer != null) {
            tokenizer.save(target);
        }
    }

    public void writeTrainerState(ObjectNode state) throws IOException {
        writeJson(Checkpoints.STATE_FILE, state);
    }

    /** {@code <name>_results.json}, and the merged all_results.json; undefined numbers (NaN) become null. */
    public void writeResults(String name, Map<String, Object> results) throws IOException {
        Map<String, Object> finite = new java.util.LinkedHashMap<>();
        results.forEach((k, v) -> finite.put(k, v instanceof Double d && !Double.isFinite(d) ? null : v));
        results = finite;
        writeJson(name + "_results.json", JSON.valueToTree(results));
        Path all = dir.resolve("all_results.json");
        ObjectNode merged = Files.exists(all) ? (ObjectNode) JSON.readTree(all.toFile()) : JSON.createObjectNode();
        merged.setAll((ObjectNode) JSON.valueToTree(results));
        writeJson("all_results.json", merged);
    }

    public void plotLoss(List<double[]> points) throws IOException {
        if (points.isEmpty()) {
            return;
        }
        LossPlot.write(dir.resolve("training_loss.png"), points, "training loss of " + dir.getFileName());
    }

    private void writeJson(String name, Object node) throws IOException {
        Path tmp = dir.resolve(name + ".tmp");
        DiskWrites.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node));
        Files.move(tmp, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
