package dev.sparksft.data;

import dev.sparksft.UserError;
import dev.sparksft.image.ImageHeaders;
import dev.sparksft.image.ImageSizing;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;

/**
 * Where a dataset's images are read: the seam between the local disk ({@link LocalMediaFiles})
 * and any Hadoop file system (the Spark driver's, shipped to the executors that convert rows).
 * {@link #resolve} is LLaMA-Factory's {@code DatasetConverter._find_medias} for one path: under
 * media_dir when a file is there, else the path as given (absolute, or relative to the working
 * directory). {@link #image} resolves and reads the header where the row is converted, so an
 * example carries its images as resolved paths with their sizes, and the pixels are read later
 * by whoever trains on it, never by the Spark driver.
 */
public interface MediaFiles extends Serializable {
    /** media_dir as the user gave it, for messages. */
    String mediaDir();

    /** {@code name} under media_dir (a path or URI), whether or not a file is there. */
    String underMediaDir(String name);

    /** {@code name} as given, as this file system names it (a relative path against the working directory). */
    String asGiven(String name);

    boolean isFile(String path) throws IOException;

    /** The bytes of the file at a resolved path; {@link FileNotFoundException} when there is none. */
    InputStream open(String path) throws IOException;

    /** LLaMA-Factory's {@code _find_medias}: media_dir/name when it is a file, else name as given. */
    default String resolve(String name) throws IOException {
        String under = underMediaDir(name);
        return isFile(under) ? under : asGiven(name);
    }

    /**
     * The image {@code name} of the row {@code row}: resolved, its size read from its header; a
     * missing, unreadable or non-image file is the user's mistake, named with the row and path.
     */
    default ImageFile image(String row, String name) {
        String path;
        try {
            path = resolve(name);
        } catch (IOException e) {
            throw new UserError(row + ": cannot look for image '" + name + "' under media_dir " + mediaDir() + ": "
                    + e.getMessage());
        }
        InputStream in;
        try {
            in = open(path);
        } catch (FileNotFoundException e) {
            throw new UserError(row + ": image '" + name + "' does not exist: neither " + underMediaDir(name)
                    + " (under media_dir " + mediaDir() + ") nor " + path + " is a file; set media_dir to the folder "
                    + "the images column's paths are relative to, or fix the path");
        } catch (IOException e) {
            throw new UserError(row + ": image " + path + " cannot be opened: " + e.getMessage());
        }
        ImageSizing.Size size = ImageHeaders.read(in, row, path);
        return new ImageFile(path, size.width(), size.height());
    }
}
