package dev.sparksft.spark;

import dev.sparksft.JsonFiles;
import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import dev.sparksft.data.DataFiles;
import dev.sparksft.data.DatasetInfo;
import dev.sparksft.data.DatasetRow;
import dev.sparksft.data.DatasetSource;
import dev.sparksft.data.MediaFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * Datasets on any Hadoop file system, as the Spark driver resolves them: dataset_dir and dataset
 * names may be plain paths (the local disk, made file: URIs so that a cluster's default file
 * system does not claim them) or URIs (hdfs:, s3a:, ...). Executors read the rows themselves.
 */
final class HadoopDatasetSource implements DatasetSource {
    private final String datasetDir;
    private final String dirUri;
    private final Configuration conf;

    HadoopDatasetSource(String datasetDir, Configuration conf) {
        this.datasetDir = datasetDir;
        this.dirUri = uri(datasetDir);
        this.conf = conf;
    }

    /** A path or URI as a URI: plain paths are local files. */
    static String uri(String pathOrUri) {
        return Locations.hasScheme(pathOrUri) ? pathOrUri : Path.of(pathOrUri).toAbsolutePath().toUri().toString();
    }

    @Override
    public String datasetDir() {
        return datasetDir;
    }

    @Override
    public JsonNode datasetInfo() throws IOException {
        org.apache.hadoop.fs.Path info = new org.apache.hadoop.fs.Path(DatasetInfo.join(dirUri, DatasetInfo.FILE));
        FileSystem fs = info.getFileSystem(conf);
        if (!fs.exists(info)) {
            return null;
        }
        return JsonFiles.parse(info.toString(), fs.open(info));
    }

    @Override
    public String locate(String name) throws IOException {
        if (Locations.hasScheme(name) || Path.of(name).isAbsolute()) {
            return exists(uri(name)) ? uri(name) : null;
        }
        String under = DatasetInfo.join(dirUri, name);
        if (exists(under)) {
            return under;
        }
        return exists(uri(name)) ? uri(name) : null;   // relative to the driver's working directory
    }

    @Override
    public String resolveFileName(String fileName) {
        return Locations.hasScheme(fileName) || Path.of(fileName).isAbsolute() ? uri(fileName) : DatasetInfo.join(dirUri, fileName);
    }

    @Override
    public List<DatasetRow> firstFileRows(String location) throws IOException {
        org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(location);
        FileSystem fs = p.getFileSystem(conf);
        if (!fs.exists(p)) {
            throw new UserError("dataset file " + location + " does not exist");
        }
        FileStatus first = fs.getFileStatus(p).isDirectory()
                ? Arrays.stream(fs.listStatus(p)).filter(s -> s.isFile() && DataFiles.isDataFile(s.getPath().getName()))
                        .min(Comparator.comparing(s -> s.getPath().toString())).orElseThrow(() -> new UserError(
                                "dataset " + location + " holds no .json, .jsonl or .parquet file"))
                : fs.getFileStatus(p);
        try (InputStream in = fs.open(first.getPath())) {
            return DataFiles.rows(0, first.getPath().toString(), in.readAllBytes());
        }
    }

    @Override
    public MediaFiles media(String mediaDir) {
        return HadoopMediaFiles.of(mediaDir);
    }

    private boolean exists(String uri) throws IOException {
        org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
        return p.getFileSystem(conf).exists(p);
    }

}
