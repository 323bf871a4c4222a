package dev.sparksft.spark;

import dev.sparksft.data.DatasetInfo;
import dev.sparksft.data.MediaFiles;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;

/**
 * A dataset's images on any Hadoop file system, for the executors that convert its rows: media_dir
 * and the images column's paths may be plain paths (local files, as {@link HadoopDatasetSource}
 * makes them) or URIs. Serialized with the task; each executor opens the file system with its own
 * Hadoop configuration ({@link ModelFiles#hadoopConf}), so no image goes through the driver.
 */
record HadoopMediaFiles(String mediaDir, String mediaDirUri) implements MediaFiles {
    static HadoopMediaFiles of(String mediaDir) {
        return new HadoopMediaFiles(mediaDir, HadoopDatasetSource.uri(mediaDir));
    }

    @Override
    public String underMediaDir(String name) {
        return Locations.hasScheme(name) || java.nio.file.Path.of(name).isAbsolute() ? HadoopDatasetSource.uri(name)
                : DatasetInfo.join(mediaDirUri, name);
    }

    @Override
    public String asGiven(String name) {
        return HadoopDatasetSource.uri(name);
    }

    @Override
    public boolean isFile(String path) throws IOException {
        Path p = new Path(path);
        try {
            FileStatus status = p.getFileSystem(ModelFiles.hadoopConf()).getFileStatus(p);
            return status.isFile();
        } catch (FileNotFoundException e) {
            return false;
        }
    }

    @Override
    public InputStream open(String path) throws IOException {
        Path p = new Path(path);
        if (!isFile(path)) {
            throw new FileNotFoundException(path);
        }
        return p.getFileSystem(ModelFiles.hadoopConf()).open(p);
    }
}
