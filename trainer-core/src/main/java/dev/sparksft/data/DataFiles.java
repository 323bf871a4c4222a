package dev.sparksft.data;

import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The rows of dataset files: JSON (one array of objects), JSON Lines (one object per line) and
 * Parquet, told apart by the file name. Both readers call {@link #rows}: the local one on the
 * bytes of each file, Spark's executors on the bytes {@code binaryFiles} gives them, so a file
 * yields the same rows (and the same malformed-row reports) in one process and under Spark.
 * Text must be UTF-8; a file that is not is reported as malformed, naming it.
 */
public final class DataFiles {
    private DataFiles() {}

    /** .json, .jsonl and .parquet files hold rows; other files in a dataset folder are ignored. */
    public static boolean isDataFile(String name) {
        return JsonRecords.isJsonName(name) || isParquet(name);
    }

    public static boolean isParquet(String name) {
        return name.endsWith(".parquet");
    }

    /**
     * The rows of one file's bytes, in file order; malformed rows (and an unreadable file) come
     * back as {@link DatasetRow#malformed} entries rather than exceptions, so the caller can
     * refuse or skip them under one rule (skip_bad_rows).
     *
     * @param file the file's full path or URI, which messages name
     */
    public static List<DatasetRow> rows(int dataset, String file, byte[] bytes) {
        String name = file.substring(file.lastIndexOf('/') + 1);
        if (isParquet(name)) {
            return ParquetRows.rows(dataset, file, name, bytes);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return List.of(DatasetRow.malformed(dataset, file, "dataset file " + file + " is not UTF-8 text ("
                    + e.getMessage() + "); save it as UTF-8"));
        }
        List<String> malformed = new ArrayList<>();
        List<JsonRecords.Row> parsed = JsonRecords.parse(name, file, text, malformed);
        List<DatasetRow> out = new ArrayList<>(parsed.size() + malformed.size());
        for (int i = 0; i < parsed.size(); i++) {
            out.add(new DatasetRow(dataset, file, i, parsed.get(i).source(), parsed.get(i).value(), null));
        }
        malformed.forEach(m -> out.add(DatasetRow.malformed(dataset, file, m)));
        return out;
    }

    /** The data files of a local file or folder, in path order (a folder's other files are ignored). */
    public static List<Path> list(Path location) throws IOException {
        if (Files.isDirectory(location)) {
            try (Stream<Path> files = Files.list(location)) {
                return files.filter(f -> Files.isRegularFile(f) && isDataFile(f.getFileName().toString())).sorted().toList();
            }
        }
        if (!Files.isRegularFile(location)) {
            throw new UserError("dataset file " + location + " does not exist");
        }
        if (!isDataFile(location.getFileName().toString())) {
            throw new UserError("dataset file " + location + " is neither .json, .jsonl nor .parquet");
        }
        return List.of(location);
    }

    /** Every row of a local file or folder: its files' rows in path order. */
    public static List<DatasetRow> read(int dataset, Path location) throws IOException {
        List<DatasetRow> rows = new ArrayList<>();
        for (Path f : list(location)) {
            rows.addAll(rows(dataset, f.toString(), Files.readAllBytes(f)));
        }
        return rows;
    }
}
