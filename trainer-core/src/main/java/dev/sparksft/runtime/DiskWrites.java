package dev.sparksft.runtime;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes that name their file when they fail. The JDK reports a full disk while writing as a
 * bare "No space left on device" (a file-size limit as "File too large"), without the path; a
 * run's error must say which file of output_dir could not be written.
 */
public final class DiskWrites {
    private DiskWrites() {}

    /** {@code IOException: writing FILE failed: REASON}, with {@code e} as its cause. */
    public static IOException failed(Path file, IOException e) {
        String reason = e instanceof FileSystemException f ? (f.getReason() != null ? f.getReason() : e.toString())
                : e.getMessage() != null ? e.getMessage() : e.toString();
        return new IOException("writing " + file + " failed: " + reason, e);
    }

    /** {@link Files#writeString} in UTF-8, naming {@code file} when it fails. */
    public static void writeString(Path file, CharSequence text, OpenOption... options) throws IOException {
        try {
            Files.writeString(file, text, StandardCharsets.UTF_8, options);
        } catch (IOException e) {
            throw failed(file, e);
        }
    }

    /** Copies {@code source} to {@code target}, replacing it, naming {@code target} when it fails. */
    public static void copy(Path source, Path target) throws IOException {
        try {
            Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw failed(target, e);
        }
    }
}
