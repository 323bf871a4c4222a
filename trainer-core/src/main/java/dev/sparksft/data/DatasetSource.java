package dev.sparksft.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.List;

/**
 * Where a run's datasets live: the seam between the local reader ({@link LocalDatasetSource},
 * one process) and Spark's (any Hadoop file system). {@link DatasetInfo} resolves dataset names
 * through it, so both shells apply LLaMA-Factory's dataset_info.json rules the same way; reading
 * every row is left to each reader (a list in one process, an RDD under Spark), and both turn a
 * file's bytes into rows with {@link DataFiles#rows}.
 */
public interface DatasetSource {
    /** dataset_dir as the user gave it, for messages. */
    String datasetDir();

    /** The JSON of dataset_dir/dataset_info.json, or null when dataset_dir has none. */
    JsonNode datasetInfo() throws IOException;

    /**
     * The data file or folder a dataset name points at: under dataset_dir, or as given (a path,
     * or a URI where the reader takes URIs); null when nothing is there.
     */
    String locate(String name) throws IOException;

    /** A dataset_info.json {@code file_name}: under dataset_dir, or as given when absolute. */
    String resolveFileName(String fileName);

    /** The rows of the first data file at {@code location} (enough to tell its formatting). */
    List<DatasetRow> firstFileRows(String location) throws IOException;

    /** The images of this source's datasets, relative paths looked up under {@code mediaDir} first. */
    MediaFiles media(String mediaDir);
}
