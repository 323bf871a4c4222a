package dev.sparksft.spark;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * Paths as users give them: a plain path or a file: URI is on the local disk (in local mode, or
 * on a mount every executor shares); any other URI (hdfs:, s3a:, ...) goes through the Hadoop client.
 */
final class Locations {
    private Locations() {}

    static boolean hasScheme(String path) {
        try {
            String scheme = new URI(path).getScheme();
            return scheme != null && scheme.length() > 1;  // "C:" is a drive, not a scheme
        } catch (URISyntaxException e) {
            return false;
        }
    }

    /** The local path of a plain path or file: URI; null for a URI that needs the Hadoop client. */
    static Path localOrNull(String pathOrUri) {
        if (!hasScheme(pathOrUri)) {
            return Path.of(pathOrUri);
        }
        return pathOrUri.startsWith("file:") ? Path.of(URI.create(pathOrUri)) : null;
    }
}
