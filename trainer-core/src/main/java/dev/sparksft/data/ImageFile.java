package dev.sparksft.data;

/**
 * One image of an example: its resolved path (a local path, or a URI on a Hadoop file system)
 * and its size in pixels as its header gives it (width first, as PIL). The size is what the
 * template's image tokens are counted from; the pixels are read from {@code path} when the
 * example trains. Serializable: it travels with its example through Spark.
 */
public record ImageFile(String path, int width, int height) implements java.io.Serializable {
    public ImageFile {
        if (path == null || width <= 0 || height <= 0) {
            throw new IllegalStateException("an image needs a path and a positive size, got " + path + " " + width
                    + "x" + height);
        }
    }
}
