package dev.sparksft.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.runtime.DiskWrites;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * {@value #FILE} in a checkpoint: the size and CRC32C of every other file, written when the
 * checkpoint is saved and compared before it is resumed from. A flipped byte in the optimizer
 * state passes every header check and trains to NaN; a truncated upload loads as a short model.
 * CRC32C rather than SHA-256 because the files are gigabytes and the threat is damage, not an
 * adversary: the JDK computes it with the CPU's CRC instruction at memory speed.
 */
final class Checksums {
    static final String FILE = "checksums.json";
    private static final String ALGORITHM = "crc32c";
    private static final int CHUNK = 8 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private Checksums() {}

    /**
     * Writes {@value #FILE} for the regular files of {@code dir}, which must be complete.
     *
     * @param known the CRC32C of files computed while they were written (the large safetensors), by
     *              name; every other file is read back
     */
    static void write(Path dir, Map<String, Long> known) throws IOException {
        ObjectNode manifest = JSON.createObjectNode().put("algorithm", ALGORITHM);
        ObjectNode files = manifest.putObject("files");
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.filter(Files::isRegularFile).filter(f -> !f.getFileName().toString().equals(FILE))
                    .sorted().toList()) {
                Long crc = known.get(f.getFileName().toString());
                files.putObject(f.getFileName().toString()).put("size", Files.size(f))
                        .put(ALGORITHM, crc != null ? hex(crc) : crc32c(f));
            }
        }
        DiskWrites.writeString(dir.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(manifest));
    }

    /** Whether {@code dir} has a manifest (checkpoints of older spark-sft versions and of HF have none). */
    static boolean present(Path dir) {
        return Files.exists(dir.resolve(FILE));
    }

    /**
     * What is wrong with {@code dir}'s files against its manifest (the first problem found, naming
     * the file, the expected and the found value); empty when they match or there is no manifest.
     * Sizes are compared first, so a truncated file is named without reading it.
     *
     * @param shownAs how the message names {@code dir} (a remote checkpoint by its remote path, not
     *                by the local copy that is read)
     */
    static Optional<String> problem(Path dir, String shownAs) throws IOException {
        Path manifestFile = dir.resolve(FILE);
        if (!Files.exists(manifestFile)) {
            return Optional.empty();
        }
        String at = shownAs.replaceAll("/+$", "") + "/";
        JsonNode files;
        try {
            JsonNode manifest = JSON.readTree(manifestFile.toFile());
            if (!ALGORITHM.equals(manifest.path("algorithm").asText()) || !manifest.path("files").isObject()) {
                return Optional.of(at + FILE + " is not a " + ALGORITHM + " manifest");
            }
            files = manifest.get("files");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return Optional.of(at + FILE + " is not valid JSON: " + e.getOriginalMessage());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = files.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Path f = dir.resolve(e.getKey());
            long size = e.getValue().path("size").asLong(-1);
            if (!Files.isRegularFile(f)) {
                return Optional.of(at + e.getKey() + " is missing");
            }
            if (Files.size(f) != size) {
                return Optional.of(at + e.getKey() + " is " + Files.size(f) + " bytes, expected " + size);
            }
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = files.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Path f = dir.resolve(e.getKey());
            String expected = e.getValue().path(ALGORITHM).asText();
            String found = crc32c(f);
            if (!found.equals(expected)) {
                return Optional.of(at + e.getKey() + " has CRC32C " + found + ", expected " + expected + " (its bytes "
                        + "changed after it was saved)");
            }
        }
        return Optional.empty();
    }

    /** The CRC32C of a file's bytes, as 8 hex digits. */
    static String crc32c(Path file) throws IOException {
        CRC32C crc = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf.clear()) >= 0) {
                crc.update(buf.flip());
            }
        }
        return hex(crc.getValue());
    }

    private static String hex(long crc) {
        return String.format("%08x", crc);
    }
}
