package dev.sparksft.data;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads datasets into conversations: file rows, then the converter of each dataset's formatting,
 * then LLaMA-Factory's validity rule. Invalid examples are dropped and counted in one warning
 * line per dataset that shows the first of them; a dataset left with no example is an error.
 */
public final class DatasetLoader {
    private static final Logger LOG = LoggerFactory.getLogger(DatasetLoader.class);

    private DatasetLoader() {}

    /**
     * @param maxSamples keep at most this many rows of each dataset (null: all)
     * @return valid conversations, indexed 0.. across the datasets in order
     */
    public static List<Conversation> load(List<DatasetSpec> specs, Integer maxSamples) throws IOException {
        List<Conversation> out = new ArrayList<>();
        long index = 0;
        for (DatasetSpec spec : specs) {
            if (spec.numSamples() != null) {
                throw new UserError("dataset '" + spec.name() + "': num_samples is not implemented yet; "
                        + "use max_samples");
            }
            List<JsonRecords.Row> rows = JsonRecords.read(Path.of(spec.path()));
            if (rows.isEmpty()) {
                throw new UserError("dataset '" + spec.name() + "' (" + spec.path() + ") is empty");
            }
            if (maxSamples != null && rows.size() > maxSamples) {
                rows = rows.subList(0, maxSamples);
            }
            requireColumns(spec, rows);
            int dropped = 0;
            String firstDropped = null;
            int kept = 0;
            for (JsonRecords.Row row : rows) {
                String[] reason = new String[1];
                Conversation c = convert(spec, row, index, r -> reason[0] = r);
                if (c == null) {
                    dropped++;
                    if (firstDropped == null) {
                        firstDropped = reason[0];
                    }
                    continue;
                }
                out.add(c);
                index++;
                kept++;
            }
            if (dropped > 0) {
                LOG.warn("Dropped {} invalid example(s) of {} in dataset '{}'; first: {}", dropped, rows.size(),
                        spec.name(), firstDropped);
            }
            if (kept == 0) {
                throw new UserError("dataset '" + spec.name() + "' has no valid example: all " + rows.size()
                        + " were dropped; first: " + firstDropped);
            }
        }
        return out;
    }

    /**
     * One row as a conversation, or null when LLaMA-Factory's rules drop it (then {@code onDrop}
     * gets "source: reason: row"). Tools are refused: their formatting is not implemented.
     */
    public static Conversation convert(DatasetSpec spec, JsonRecords.Row row, long index,
                                       java.util.function.Consumer<String> onDrop) {
        String reason;
        Conversation c = null;
        try {
            c = Converters.convert(spec, row, index);
            reason = c.invalidReason();
        } catch (InvalidExampleException e) {
            reason = e.getMessage();
        }
        if (reason != null) {
            onDrop.accept(row.source() + ": " + reason + ": " + Converters.abbreviate(row.value().toString()));
            return null;
        }
        if (!c.tools().isEmpty()) {
            throw new UserError(row.source() + ": the example has tools, and tool formatting is not "
                    + "implemented yet; drop the tools column from dataset_info.json");
        }
        return c;
    }

    /**
     * A configured column that no row has is a dataset_info.json mistake, not a bad example.
     * Pairs of (what the column is for, its configured name).
     */
    public static List<String[]> requiredColumns(DatasetSpec spec) {
        List<String[]> required = spec.formatting() == DatasetSpec.Formatting.ALPACA
                ? List.of(new String[] {"prompt", spec.prompt()}, new String[] {"response", spec.response()})
                : List.<String[]>of(new String[] {"messages", spec.messages()});
        return required.stream().filter(r -> r[1] != null).toList();
    }

    /** Fails unless every {@link #requiredColumns required column} is in at least one of {@code rows}. */
    public static void requireColumns(DatasetSpec spec, List<JsonRecords.Row> rows) {
        for (String[] r : requiredColumns(spec)) {
            if (rows.stream().noneMatch(row -> row.value().has(r[1]))) {
                throw missingColumn(spec, r, rows.get(0).value());
            }
        }
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
}
