package dev.sparksft.spark;

import dev.sparksft.UserError;
import dev.sparksft.run.DiskEstimate;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.TrainerLog;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * output_dir on any Hadoop file system. The trainer writes plain files, so every rank works in a
 * local staging folder, and this class keeps the real output_dir in step: rank 0 uploads each
 * checkpoint when it is complete (to a temporary name, then renamed: a checkpoint exists whole
 * or not at all), each new line of trainer_log.jsonl (the driver shows progress from it), and the
 * final model and results; a retried attempt downloads the checkpoint it resumes from. A local
 * (or file:) output_dir, which every executor sees, is used as it is and nothing is copied.
 */
final class OutputMirror {
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d+)");
    private static final Logger LOG = LoggerFactory.getLogger(OutputMirror.class);

    private final String outputDir;
    private final org.apache.hadoop.fs.Path remote;   // null: output_dir is local
    private final Path local;
    private final Configuration conf;

    private OutputMirror(String outputDir, org.apache.hadoop.fs.Path remote, Path local, Configuration conf) {
        this.outputDir = outputDir;
        this.remote = remote;
        this.local = local;
        this.conf = conf;
    }

    static OutputMirror of(String outputDir, Configuration conf) {
        Path dir = Locations.localOrNull(outputDir);
        if (dir != null) {
            return new OutputMirror(outputDir, null, dir, conf);
        }
        Path staging = Path.of(System.getProperty("java.io.tmpdir"), "spark-sft-output", ModelFiles.hash(outputDir));
        return new OutputMirror(outputDir, new org.apache.hadoop.fs.Path(outputDir), staging, conf);
    }

    /** The mirror a rank works with: its own staging folder (ranks of local[N] share one JVM and disk). */
    OutputMirror forRank(int rank) {
        return remote == null ? this : new OutputMirror(outputDir, remote, local.resolve("rank-" + rank), conf);
    }

    /** output_dir as the user gave it. */
    String describe() {
        return outputDir;
    }

    boolean isRemote() {
        return remote != null;
    }

    /** Where the trainer writes on this executor. */
    Path localDir() {
        return local;
    }

    /**
     * Driver: the same rule as a local output_dir: a folder that holds another run is refused
     * unless overwrite (its run files are then deleted) or the run resumes from it.
     */
    void prepare(boolean overwrite, boolean resuming) throws IOException {
        if (remote == null) {
            Outputs.prepare(local, local, overwrite, resuming);
            return;
        }
        FileSystem fs = fs();
        if (fs.exists(remote) && !fs.getFileStatus(remote).isDirectory()) {
            throw Outputs.notADirectory(outputDir);
        }
        fs.mkdirs(remote);
        List<String> names = java.util.Arrays.stream(fs.listStatus(remote)).map(s -> s.getPath().getName()).toList();
        for (String name : Outputs.toReplace(outputDir, names, overwrite, resuming)) {
            fs.delete(new org.apache.hadoop.fs.Path(remote, name), true);
        }
    }

    /**
     * {@link #prepare}'s refusals, changing nothing: checked before the job reads its data. A remote
     * output_dir is probed by creating and deleting a file in it (or in the nearest folder above it
     * that exists): permissions and read-only stores refuse it now, not at the first checkpoint.
     */
    void check(boolean overwrite, boolean resuming) throws IOException {
        if (remote == null) {
            Outputs.check(local, overwrite, resuming);
            return;
        }
        FileSystem fs = fs();
        if (fs.exists(remote) && !fs.getFileStatus(remote).isDirectory()) {
            throw Outputs.notADirectory(outputDir);
        }
        if (fs.exists(remote)) {
            Outputs.toReplace(outputDir, java.util.Arrays.stream(fs.listStatus(remote)).map(s -> s.getPath().getName())
                    .toList(), overwrite, resuming);
        }
        org.apache.hadoop.fs.Path existing = remote;
        while (existing.getParent() != null && !fs.exists(existing)) {
            existing = existing.getParent();
        }
        org.apache.hadoop.fs.Path probe = new org.apache.hadoop.fs.Path(existing, ".spark-sft-probe-" + java.util.UUID.randomUUID());
        try {
            fs.create(probe, false).close();
            fs.delete(probe, false);
        } catch (IOException e) {
            throw new UserError("output_dir " + outputDir + " is not writable: creating a file in " + existing
                    + " failed (" + e + "); choose another output_dir or make " + existing + " writable");
        }
    }

    /**
     * Driver: refuses a run that will not fit in output_dir (local: its file system's free space). A
     * Hadoop file system's free space for this user is unknown (quotas, object stores): not checked.
     */
    void requireSpace(DiskEstimate need, boolean overwrite, boolean resuming) throws IOException {
        if (remote == null) {
            need.requireFits(outputDir, Outputs.freeSpace(local, overwrite, resuming));
        } else {
            LOG.info("output_dir {} is on a Hadoop file system, whose free space is not checked; the run writes at "
                    + "least {} MB there (and stages checkpoints in {} on rank 0)", outputDir, need.total() >> 20, local);
        }
    }

    /** A fresh staging folder for this attempt (remote), so only uploaded state is ever resumed from. */
    void resetStaging() throws IOException {
        if (remote != null) {
            Checkpoints.deleteRecursively(local);
            Files.createDirectories(local);
        }
    }

    /** The newest complete checkpoint of output_dir ("checkpoint-N"), if any. */
    Optional<String> latestCheckpoint() throws IOException {
        List<String> all = checkpoints();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** The complete checkpoints of output_dir ("checkpoint-N"), by step. */
    List<String> checkpoints() throws IOException {
        if (remote == null) {
            return Checkpoints.list(local).stream().map(p -> p.getFileName().toString()).toList();
        }
        FileSystem fs = fs();
        if (!fs.exists(remote)) {
            return List.of();
        }
        return java.util.Arrays.stream(fs.listStatus(remote))
                .filter(s -> s.isDirectory() && CHECKPOINT.matcher(s.getPath().getName()).matches())
                .filter(s -> exists(new org.apache.hadoop.fs.Path(s.getPath(), Checkpoints.STATE_FILE)))
                .map(s -> s.getPath().getName())
                .sorted(Comparator.comparingLong(Checkpoints::stepOf)).toList();
    }

    /** The local copy of checkpoint {@code name} of output_dir (downloaded when remote). */
    Path fetchCheckpoint(String name) throws IOException {
        Path target = local.resolve(name);
        if (remote != null && !Files.isDirectory(target)) {
            Path tmp = local.resolve("." + name + ".download");
            Checkpoints.deleteRecursively(tmp);
            fs().copyToLocalFile(false, new org.apache.hadoop.fs.Path(remote, name),
                    new org.apache.hadoop.fs.Path(tmp.toUri()), true);
            Files.move(tmp, target);
        }
        return target;
    }

    /** Rank 0 of a resumed attempt: the log so far, which the trainer keeps up to its checkpoint. */
    void fetchLog() throws IOException {
        org.apache.hadoop.fs.Path log = remote == null ? null : new org.apache.hadoop.fs.Path(remote, TrainerLog.FILE);
        if (log != null && exists(log)) {
            Files.createDirectories(local);
            fs().copyToLocalFile(false, log, new org.apache.hadoop.fs.Path(local.resolve(TrainerLog.FILE).toUri()), true);
        }
    }

    /**
     * Driver: where the driver writes files of its own (predictions, results). For a local
     * output_dir that is output_dir itself; for a remote one a fresh folder holding a copy of
     * all_results.json, which new results are merged into before upload.
     */
    Path driverStaging() throws IOException {
        if (remote == null) {
            Files.createDirectories(local);
            return local;
        }
        Path staging = Files.createTempDirectory("spark-sft-driver-output");
        org.apache.hadoop.fs.Path all = new org.apache.hadoop.fs.Path(remote, "all_results.json");
        if (exists(all)) {
            fs().copyToLocalFile(false, all, new org.apache.hadoop.fs.Path(staging.resolve("all_results.json").toUri()), true);
        } else {
            fs().mkdirs(remote);
        }
        return staging;
    }

    /** Driver: a JSON object file of output_dir ({@code eval_results.json}, ...), empty when there is none. */
    @SuppressWarnings("unchecked")
    Map<String, Object> readJson(String name) throws IOException {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        if (remote == null) {
            Path f = local.resolve(name);
            return Files.exists(f) ? json.readValue(f.toFile(), Map.class) : new java.util.LinkedHashMap<>();
        }
        org.apache.hadoop.fs.Path f = new org.apache.hadoop.fs.Path(remote, name);
        if (!exists(f)) {
            return new java.util.LinkedHashMap<>();
        }
        try (FSDataInputStream in = fs().open(f)) {
            return json.readValue((java.io.InputStream) in, Map.class);
        }
    }

    /** Uploads a file or folder of the staging folder, replacing the remote one at once (temporary name, rename). */
    void push(Path entry) {
        if (remote == null) {
            return;
        }
        try {
            FileSystem fs = fs();
            String name = entry.getFileName().toString();
            org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(remote, name);
            org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path(remote, "." + name + ".upload");
            fs.delete(tmp, true);
            fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(entry.toUri()), tmp);
            fs.delete(target, true);
            if (!fs.rename(tmp, target)) {
                throw new IOException("could not rename " + tmp + " to " + target);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not upload " + entry + " to output_dir " + outputDir, e);
        }
    }

    /** Deletes the remote copy of a staging entry (a checkpoint that save_total_limit rotated out). */
    void remove(Path entry) {
        if (remote == null) {
            return;
        }
        try {
            fs().delete(new org.apache.hadoop.fs.Path(remote, entry.getFileName().toString()), true);
        } catch (IOException e) {
            throw new UncheckedIOException("could not delete " + entry.getFileName() + " from output_dir " + outputDir, e);
        }
    }

    /** Rank 0 at the end: the final model, results and plot (every top-level file of the staging folder). */
    void pushFinal() throws IOException {
        if (remote == null) {
            return;
        }
        try (Stream<Path> files = Files.list(local)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                push(f);
            }
        }
    }

    /** Driver: the lines of output_dir's trainer_log.jsonl so far (none when it does not exist yet). */
    List<String> readLog() throws IOException {
        if (remote == null) {
            Path log = local.resolve(TrainerLog.FILE);
            return Files.exists(log) ? Files.readAllLines(log, StandardCharsets.UTF_8) : List.of();
        }
        org.apache.hadoop.fs.Path log = new org.apache.hadoop.fs.Path(remote, TrainerLog.FILE);
        if (!exists(log)) {
            return List.of();
        }
        try (FSDataInputStream in = fs().open(log)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        }
    }

    private FileSystem fs() throws IOException {
        return remote.getFileSystem(conf);
    }

    private boolean exists(org.apache.hadoop.fs.Path p) {
        try {
            return fs().exists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

}
