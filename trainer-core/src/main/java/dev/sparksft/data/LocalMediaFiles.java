package dev.sparksft.data;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Images on the local disk: media_dir and the images column hold plain paths. */
public record LocalMediaFiles(String mediaDir) implements MediaFiles {
    @Override
    public String underMediaDir(String name) {
        return Path.of(mediaDir).resolve(name).toString();   // an absolute name stays itself, as os.path.join
    }

    @Override
    public String asGiven(String name) {
        return name;
    }

    @Override
    public boolean isFile(String path) {
        return Files.isRegularFile(Path.of(path));
    }

    @Override
    public InputStream open(String path) throws IOException {
        if (!Files.isRegularFile(Path.of(path))) {
            throw new FileNotFoundException(path);
        }
        try {
            return Files.newInputStream(Path.of(path));
        } catch (NoSuchFileException e) {
            throw new FileNotFoundException(path);
        }
    }
}
