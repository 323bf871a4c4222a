package dev.sparksft.data;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * One row of a dataset file, as both readers produce it (the local one and Spark's executors):
 * which dataset of the run it belongs to, its file and position there (the order rows are
 * trained in is dataset, file, row), where to point a message ("data.jsonl line 3"), and the row
 * itself, or why it is malformed (not JSON, not an object; {@code value} is null then).
 * Serializable, because Spark moves rows between executors (Jackson's nodes serialize).
 */
public record DatasetRow(int dataset, String file, long row, String source, JsonNode value, String malformed)
        implements java.io.Serializable {

    public static DatasetRow malformed(int dataset, String file, String why) {
        return new DatasetRow(dataset, file, -1, why, null, why);
    }

    public boolean isMalformed() {
        return malformed != null;
    }

    /** The row as the converters read it. */
    public JsonRecords.Row asRecord() {
        return new JsonRecords.Row(value, source);
    }
}
