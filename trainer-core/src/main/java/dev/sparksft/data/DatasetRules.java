package dev.sparksft.data;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rules that turn a dataset's rows into conversations, one function each, applied by both
 * readers in the same order (the local one over lists, Spark's over partitions and counts):
 * <ol>
 *   <li>malformed rows (not JSON, not an object) refuse the run unless skip_bad_rows;</li>
 *   <li>a dataset with no row is an error, and so is a configured column that no row has;</li>
 *   <li>max_samples keeps the first rows of each dataset, in file and row order;</li>
 *   <li>each row is converted (alpaca, sharegpt, openai); LLaMA-Factory's invalid examples are
 *       dropped, counted and reported in one warning per dataset ({@link #reportDropped});</li>
 *   <li>the kept examples are numbered 0.. across the datasets in order.</li>
 * </ol>
 */
public final class DatasetRules {
    private static final Logger LOG = LoggerFactory.getLogger(DatasetRules.class);
    /** Malformed rows named in the error or warning. */
    public static final int SHOWN = 3;

    private DatasetRules() {}

    /** A row converted: the conversation, or (conversation null) why LLaMA-Factory's rules drop it. */
    public record Converted(Conversation conversation, String dropped) {}

    /** dataset_info.json keys spark-sft reads but does not implement. */
    public static void requireSupported(DatasetSpec spec) {
        if (spec.numSamples() != null) {
            throw new UserError("dataset '" + spec.name() + "': num_samples is not implemented yet; use max_samples");
        }
    }

    /**
     * Rule 1. {@code first}: the first {@link #SHOWN} malformed rows' descriptions in sorted order.
     */
    public static void malformedRows(long count, List<String> first, boolean skipBadRows) {
        if (count == 0) {
            return;
        }
        String shown = String.join("; ", first) + (count > first.size() ? "; ..." : "");
        if (!skipBadRows) {
            throw new UserError(count + " malformed row(s) in the dataset: " + shown
                    + ". Fix them, or set skip_bad_rows: true to train without them");
        }
        LOG.warn("skip_bad_rows: skipping {} malformed row(s): {}", count, shown);
    }

    /** Rule 2: a dataset without a (well-formed) row; {@code key} is dataset or eval_dataset. */
    public static UserError empty(String key, DatasetSpec spec) {
        return new UserError(key + ": dataset '" + spec.name() + "' (" + spec.path() + ") is empty");
    }

    /**
     * Rule 2: the columns a dataset's formatting needs, as pairs of (what the column is for, its
     * configured name). A configured column that no row has is a dataset_info.json mistake.
     */
    public static List<String[]> requiredColumns(DatasetSpec spec) {
        List<String[]> required = spec.formatting() == DatasetSpec.Formatting.ALPACA
                ? List.of(new String[] {"prompt", spec.prompt()}, new String[] {"response", spec.response()})
                : List.<String[]>of(new String[] {"messages", spec.messages()});
        return required.stream().filter(r -> r[1] != null).toList();
    }

    /** The error for a required column {@code r} that no row has; {@code first} shows the columns rows do have. */
    public static UserError missingColumn(DatasetSpec spec, String[] r, JsonNode first) {
        List<String> keys = new ArrayList<>();
        first.fieldNames().forEachRemaining(keys::add);
        return new UserError("dataset '" + spec.name() + "' (" + spec.path() + "): column '" + r[1]
                + "' (columns." + r[0] + ") is missing; the rows have " + keys + ". Set columns." + r[0]
                + " in dataset_info.json" + (spec.formatting() == DatasetSpec.Formatting.ALPACA
                ? "" : " or check formatting (sharegpt: conversations with from/value; openai: messages with role/content)"));
    }

    /** Rule 3: how many of a dataset's {@code rows} are used. */
    public static long usedRows(long rows, Integer maxSamples) {
        return maxSamples == null ? rows : Math.min(rows, maxSamples);
    }

    /**
     * Rule 4 for one row: its conversation numbered {@code index}, or why it is dropped
     * ("source: reason: row").
     */
    public static Converted convert(DatasetSpec spec, DatasetRow row, long index) {
        return convert(spec, row, index, null);
    }

    /**
     * Rule 4 for one row whose images (if the spec has an images column) are found through
     * {@code media}: resolved and their headers read here, where the row is converted (an
     * executor under Spark).
     */
    public static Converted convert(DatasetSpec spec, DatasetRow row, long index, MediaFiles media) {
        JsonRecords.Row record = row.asRecord();
        String reason;
        Conversation c = null;
        try {
            c = Converters.convert(spec, record, index, media);
            reason = c.invalidReason();
        } catch (InvalidExampleException e) {
            reason = e.getMessage();
        }
        if (reason != null) {
            return new Converted(null, row.source() + ": " + reason + ": " + Converters.abbreviate(row.value().toString()));
        }
        return new Converted(c, null);
    }

    /** Rule 4's report: one warning per dataset; a dataset with no valid example left is an error. */
    public static void reportDropped(DatasetSpec spec, long used, long dropped, String first) {
        if (dropped == 0) {
            return;
        }
        if (dropped == used) {
            throw new UserError("dataset '" + spec.name() + "' has no valid example: all " + dropped
                    + " were dropped; first: " + first);
        }
        LOG.warn("Dropped {} invalid example(s) of {} in dataset '{}'; first: {}", dropped, used, spec.name(), first);
    }

    /** do_predict (and evaluation with generation) without a set to generate for. */
    public static UserError noPredictSet() {
        return new UserError("do_predict needs a predict set: set eval_dataset (or val_size)");
    }
}
