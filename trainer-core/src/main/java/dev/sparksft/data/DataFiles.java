package dev.sparksft.data;

import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
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
 * Text must be UTF-8; a line that is not is reported as malformed, naming the file, the line and
 * the byte offset (in a JSON array file, the whole file is malformed).
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
        List<String> notUtf8 = new ArrayList<>();
        String text = decodeLines(bytes, notUtf8);
        if (!notUtf8.isEmpty() && JsonRecords.startsWithArray(text)) {   // one array: no row can be skipped alone
            return List.of(DatasetRow.malformed(dataset, file, "dataset file " + file + " is not UTF-8 text at "
                    + notUtf8.get(0) + "; save it as UTF-8"));
        }
        List<String> malformed = new ArrayList<>();
        notUtf8.forEach(at -> malformed.add("dataset file " + file + " is not UTF-8 text at " + at + "; save it as UTF-8"));
        List<JsonRecords.Row> parsed = JsonRecords.parse(name, file, text, malformed);
        List<DatasetRow> out = new ArrayList<>(parsed.size() + malformed.size());
        for (int i = 0; i < parsed.size(); i++) {
            out.add(new DatasetRow(dataset, file, i, parsed.get(i).source(), parsed.get(i).value(), null));
        }
        malformed.forEach(m -> out.add(DatasetRow.malformed(dataset, file, m)));
        return out;
    }

    /**
     * The UTF-8 text of {@code bytes}, decoded line by line so that an invalid byte is reported
     * where it is: each line that is not UTF-8 is left blank and described in {@code notUtf8} as
     * "line 3 (byte offset 812)". Splitting the bytes at '\n' is safe: no multi-byte UTF-8
     * sequence contains the byte 0x0A.
     */
    static String decodeLines(byte[] bytes, List<String> notUtf8) {
        StringBuilder text = new StringBuilder(bytes.length);
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        int start = 0;
        for (int line = 1; start <= bytes.length; line++) {
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') {
                end++;
            }
            ByteBuffer in = ByteBuffer.wrap(bytes, start, end - start);
            CharBuffer out = CharBuffer.allocate(end - start);
            CoderResult result = utf8.reset().decode(in, out, true);
            if (result.isError()) {
                notUtf8.add("line " + line + " (byte offset " + in.position() + ")");
            } else {
                text.append(out.flip());
            }
            if (end < bytes.length) {
                text.append('\n');
            }
            start = end + 1;
        }
        return text.toString();
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
