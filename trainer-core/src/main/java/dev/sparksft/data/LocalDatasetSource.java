package dev.sparksft.data;

import dev.sparksft.JsonFiles;
import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Datasets on the local disk: dataset_dir and dataset paths are plain paths. */
public final class LocalDatasetSource implements DatasetSource {
    private final Path dir;

    public LocalDatasetSource(Path datasetDir) {
        this.dir = datasetDir;
    }

    @Override
    public String datasetDir() {
        return dir.toString();
    }

    @Override
    public JsonNode datasetInfo() throws IOException {
        Path info = dir.resolve(DatasetInfo.FILE);
        if (!Files.isRegularFile(info)) {
            return null;
        }
        return JsonFiles.read(info);
    }

    @Override
    public String locate(String name) {
        Path direct = Path.of(name).isAbsolute() ? Path.of(name) : dir.resolve(name);
        if (!Files.exists(direct) && Files.exists(Path.of(name))) {
            direct = Path.of(name);
        }
        return Files.exists(direct) ? direct.toString() : null;
    }

    @Override
    public String resolveFileName(String fileName) {
        Path file = Path.of(fileName);
        return (file.isAbsolute() ? file : dir.resolve(file)).toString();
    }

    @Override
    public List<DatasetRow> firstFileRows(String location) throws IOException {
        List<Path> files = DataFiles.list(Path.of(location));
        if (files.isEmpty()) {
            throw new UserError("dataset " + location + " holds no .json, .jsonl or .parquet file");
        }
        return DataFiles.rows(0, files.get(0).toString(), Files.readAllBytes(files.get(0)));
    }

    @Override
    public MediaFiles media(String mediaDir) {
        return new LocalMediaFiles(mediaDir);
    }

    /** Every row of the data at {@code location} (a file, or a folder's files in path order). */
    public List<DatasetRow> rows(int dataset, String location) throws IOException {
        return DataFiles.read(dataset, Path.of(location));
    }
}
