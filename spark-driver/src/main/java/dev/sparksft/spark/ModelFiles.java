package dev.sparksft.spark;

import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkEnv;
import org.apache.spark.deploy.SparkHadoopUtil;

/**
 * A model directory as a local path: local paths and file: URIs as they are; any other Hadoop
 * URI (hdfs:, s3a:, ...) copied once per executor JVM into a local cache folder, so that
 * libtorch and the tokenizer read plain files.
 */
final class ModelFiles {
    private static final Map<String, Path> COPIES = new HashMap<>();

    private ModelFiles() {}

    static synchronized Path local(String pathOrUri) throws IOException {
        Path local = Locations.localOrNull(pathOrUri);
        if (local != null) {
            return local;
        }
        org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(pathOrUri);
        FileSystem fs = src.getFileSystem(hadoopConf());
        if (!fs.exists(src)) {
            throw new UserError("model " + pathOrUri + " does not exist");
        }
        // a model rewritten in place (a trained output_dir, run again) is a new copy
        org.apache.hadoop.fs.Path config = new org.apache.hadoop.fs.Path(src, "config.json");
        if (!fs.exists(config)) {   // a LoRA output_dir: its adapter's config
            config = new org.apache.hadoop.fs.Path(src, dev.sparksft.model.LoraAdapter.CONFIG_FILE);
        }
        String version = pathOrUri + "@" + (fs.exists(config) ? fs.getFileStatus(config).getModificationTime() : 0);
        Path copy = COPIES.get(version);
        if (copy != null) {
            return copy;
        }
        Path root = Path.of(System.getProperty("java.io.tmpdir"), "spark-sft-models");
        Files.createDirectories(root);
        Path target = root.resolve(hash(version));
        if (!Files.isDirectory(target)) {
            Path tmp = Files.createTempDirectory(root, "copy-");
            for (var status : fs.listStatus(src)) {
                if (status.isFile()) {
                    fs.copyToLocalFile(false, status.getPath(),
                            new org.apache.hadoop.fs.Path(tmp.resolve(status.getPath().getName()).toUri()), true);
                }
            }
            try {
                Files.move(tmp, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                // another executor JVM on this host copied it first
            }
        }
        COPIES.put(version, target);
        return target;
    }

    static Configuration hadoopConf() {
        SparkEnv env = SparkEnv.get();
        return env == null ? new Configuration() : SparkHadoopUtil.get().newConfiguration(env.conf());
    }

    /** A short stable folder name for a path or URI. */
    static String hash(String s) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d, 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
