package dev.sparksft.data;

import dev.sparksft.UserError;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The datasets of a run read in one process: {@link DatasetRules} applied over lists, in the
 * order Spark's reader applies them over partitions, so both give the same conversations.
 */
public final class LocalDatasets {
    private LocalDatasets() {}

    /**
     * The valid conversations of {@code names}, numbered 0.. across the datasets in order.
     *
     * @param key        dataset or eval_dataset, for messages
     * @param maxSamples keep at most this many rows of each dataset (null: all)
     */
    public static List<Conversation> load(List<String> names, LocalDatasetSource source, String key, Integer maxSamples,
                                          boolean skipBadRows) throws IOException {
        return load(names, source, key, maxSamples, skipBadRows, source.datasetDir());
    }

    /** @param mediaDir where the images columns' relative paths are looked up first (media_dir) */
    public static List<Conversation> load(List<String> names, LocalDatasetSource source, String key, Integer maxSamples,
                                          boolean skipBadRows, String mediaDir) throws IOException {
        MediaFiles media = source.media(mediaDir);
        List<DatasetSpec> specs = DatasetInfo.resolve(names, source);
        List<List<DatasetRow>> rows = new ArrayList<>();
        List<String> malformed = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            DatasetRules.requireSupported(specs.get(i));
            List<DatasetRow> good = new ArrayList<>();
            for (DatasetRow r : source.rows(i, specs.get(i).path())) {
                if (r.isMalformed()) {
                    malformed.add(r.malformed());
                } else {
                    good.add(r);
                }
            }
            rows.add(good);
        }
        DatasetRules.malformedRows(malformed.size(), malformed.stream().sorted().limit(DatasetRules.SHOWN).toList(),
                skipBadRows);
        List<Conversation> out = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            DatasetSpec spec = specs.get(i);
            List<DatasetRow> good = rows.get(i);
            if (good.isEmpty()) {
                throw DatasetRules.empty(key, spec);
            }
            for (String[] column : DatasetRules.requiredColumns(spec)) {
                if (good.stream().noneMatch(r -> r.value().has(column[1]))) {
                    throw DatasetRules.missingColumn(spec, column, good.get(0).value());
                }
            }
            List<DatasetRow> used = good.subList(0, (int) DatasetRules.usedRows(good.size(), maxSamples));
            long dropped = 0;
            String first = null;
            for (DatasetRow r : used) {
                DatasetRules.Converted c = DatasetRules.convert(spec, r, out.size(), media);
                if (c.conversation() != null) {
                    out.add(c.conversation());
                } else if (dropped++ == 0) {
                    first = c.dropped();
                }
            }
            DatasetRules.reportDropped(spec, used.size(), dropped, first);
        }
        return out;
    }

    /** The same for a dataset given by name only, as the tests and tools call it. */
    public static List<Conversation> load(List<String> names, java.nio.file.Path datasetDir, Integer maxSamples)
            throws IOException {
        if (names.isEmpty()) {
            throw new UserError("dataset: no dataset named");
        }
        return load(names, new LocalDatasetSource(datasetDir), "dataset", maxSamples, false);
    }
}
