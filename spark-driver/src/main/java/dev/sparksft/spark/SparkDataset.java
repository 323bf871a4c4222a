package dev.sparksft.spark;

import dev.sparksft.config.DataArguments;
import dev.sparksft.data.DataFiles;
import dev.sparksft.data.DatasetInfo;
import dev.sparksft.data.DatasetRow;
import dev.sparksft.data.DatasetRules;
import dev.sparksft.data.DatasetSpec;
import dev.sparksft.data.MediaFiles;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.generate.Predictor;
import dev.sparksft.template.SupervisedEncoder;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The training (and eval) examples read and tokenized by Spark. trainer-core's
 * {@link DatasetRules} applied over partitions, in the order its local reader applies them over
 * lists: datasets in config order, files in path order, rows in file order; malformed rows
 * refuse the run (or are skipped with skip_bad_rows); max_samples per dataset; invalid examples
 * dropped with one warning; dense indices 0..n-1 over the kept examples; the seeded val_size
 * split. Names resolve through {@link DatasetInfo} over any Hadoop path, and executors turn each
 * file's bytes into rows with {@link DataFiles#rows} (JSON, JSON Lines, Parquet), as one process does.
 * An images column's paths are resolved (media_dir first) and their headers read on the executors
 * that convert the rows ({@link HadoopMediaFiles}); the examples carry the resolved paths.
 */
final class SparkDataset {
    /** The tokenized training set (indexed 0..numTrain-1, not yet ordered for training) and the eval set. */
    record Loaded(JavaRDD<TokenizedExample> train, int numTrain, List<TokenizedExample> eval) {}

    /** Sort key of a row: dataset, then file path, then row within the file. */
    record RowKey(int dataset, String file, long row) implements Serializable, Comparable<RowKey> {
        private static final Comparator<RowKey> ORDER = Comparator.comparingInt(RowKey::dataset)
                .thenComparing(RowKey::file).thenComparingLong(RowKey::row);

        @Override
        public int compareTo(RowKey o) {
            return ORDER.compare(this, o);
        }
    }

    /** A row after conversion and tokenization: the example (or prompt), or why LLaMA-Factory's rules drop it. */
    record Encoded(int dataset, long order, TokenizedExample example, Predictor.Prompt prompt, String dropped)
            implements Serializable {
        boolean kept() {
            return dropped == null;
        }
    }

    private final JavaSparkContext jsc;
    private final DataArguments data;
    private final ExecutorEncoders.Key encoderKey;
    private final boolean skipBadRows;

    SparkDataset(JavaSparkContext jsc, DataArguments data, ExecutorEncoders.Key encoderKey, boolean skipBadRows) {
        this.jsc = jsc;
        this.data = data;
        this.encoderKey = encoderKey;
        this.skipBadRows = skipBadRows;
    }

    Loaded load(long seed) {
        JavaRDD<TokenizedExample> all = reindex(encoded(resolve(data.dataset()), "dataset", false).map(Encoded::example));
        long n = all.count();
        List<TokenizedExample> eval = List.of();
        JavaRDD<TokenizedExample> train = all;
        if (data.valSize() > 0) {
            Broadcast<boolean[]> isEval = jsc.broadcast(data.validationSplit(Math.toIntExact(n), seed));
            eval = reindex(all.filter(ex -> isEval.value()[(int) ex.index()])).collect();
            train = reindex(all.filter(ex -> !isEval.value()[(int) ex.index()]));
            n -= eval.size();
        } else if (!data.evalDataset().isEmpty()) {
            eval = reindex(encoded(resolve(data.evalDataset()), "eval_dataset", false).map(Encoded::example)).collect();
        }
        if (data.packing() && n > 0) {
            train = pack(train);
            n = train.count();
        }
        return new Loaded(train.persist(StorageLevel.MEMORY_AND_DISK()), Math.toIntExact(n), eval);
    }

    /** The prediction set (eval_dataset, or the val_size split) as prompts and labels, indexed 0.. in input order. */
    JavaRDD<Predictor.Prompt> predictSet(long seed) {
        if (data.valSize() > 0) {
            JavaRDD<Predictor.Prompt> all = reindexPrompts(encoded(resolve(data.dataset()), "dataset", true)
                    .map(Encoded::prompt));
            Broadcast<boolean[]> isEval = jsc.broadcast(data.validationSplit(Math.toIntExact(all.count()), seed));
            return reindexPrompts(all.filter(p -> isEval.value()[(int) p.index()]));
        }
        if (data.evalDataset().isEmpty()) {
            throw DatasetRules.noPredictSet();
        }
        return reindexPrompts(encoded(resolve(data.evalDataset()), "eval_dataset", true).map(Encoded::prompt));
    }

    /**
     * packing: the driver groups the examples by {@link Packing#assign} from their lengths alone
     * (the same packs as one process makes), executors concatenate each pack's examples.
     */
    private JavaRDD<TokenizedExample> pack(JavaRDD<TokenizedExample> train) {
        List<Tuple2<Long, Integer>> lengths = train.map(ex -> new Tuple2<>(ex.index(), ex.length())).collect();
        int[] byIndex = new int[lengths.size()];
        lengths.forEach(t -> byIndex[Math.toIntExact(t._1())] = t._2());
        List<int[]> packs = Packing.assign(byIndex, data.cutoffLen());
        long[] packOf = new long[byIndex.length];   // example index -> pack * n + position in the pack
        for (int p = 0; p < packs.size(); p++) {
            for (int i = 0; i < packs.get(p).length; i++) {
                packOf[packs.get(p)[i]] = (long) p * byIndex.length + i;
            }
        }
        Broadcast<long[]> where = jsc.broadcast(packOf);
        long n = byIndex.length;
        boolean neat = data.neatPacking();
        return train.mapToPair(ex -> new Tuple2<>(where.value()[(int) ex.index()] / n,
                        new Tuple2<>(where.value()[(int) ex.index()] % n, ex)))
                .groupByKey()
                .map(g -> {
                    List<Tuple2<Long, TokenizedExample>> members = new ArrayList<>();
                    g._2().forEach(members::add);
                    members.sort(Comparator.comparing(Tuple2::_1));
                    return Packing.concat(g._1(), members.stream().map(Tuple2::_2).toList(), neat);
                });
    }

    private List<DatasetSpec> resolve(List<String> names) {
        try {
            return DatasetInfo.resolve(names, new HadoopDatasetSource(data.datasetDir(), jsc.hadoopConfiguration()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read dataset_dir " + data.datasetDir(), e);
        }
    }

    /** The rows of dataset number {@code dataset}: every data file at {@code location}, parsed on the executors. */
    private JavaRDD<DatasetRow> rows(int dataset, String location) {
        return jsc.binaryFiles(location)
                .filter(f -> DataFiles.isDataFile(f._1().substring(f._1().lastIndexOf('/') + 1)))
                .flatMap(f -> DataFiles.rows(dataset, f._1(), f._2().toArray()).iterator());
    }

    /** The kept rows of {@code specs}, converted, in dataset/file/row order; {@code prompts}: for generation. */
    private JavaRDD<Encoded> encoded(List<DatasetSpec> specs, String key, boolean prompts) {
        List<JavaRDD<DatasetRow>> parts = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            DatasetRules.requireSupported(specs.get(i));
            parts.add(rows(i, specs.get(i).path()));
        }
        @SuppressWarnings("unchecked")
        JavaRDD<DatasetRow> raw = jsc.union(parts.toArray(new JavaRDD[0])).persist(StorageLevel.MEMORY_AND_DISK());
        JavaRDD<DatasetRow> bad = raw.filter(DatasetRow::isMalformed);
        DatasetRules.malformedRows(bad.count(), bad.map(DatasetRow::malformed).takeOrdered(DatasetRules.SHOWN),
                skipBadRows);
        JavaRDD<DatasetRow> good = raw.filter(r -> !r.isMalformed());
        Map<Integer, Long> counts = good.map(DatasetRow::dataset).countByValue();
        long[] offsets = new long[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            long count = counts.getOrDefault(i, 0L);
            if (count == 0) {
                throw DatasetRules.empty(key, specs.get(i));
            }
            if (i + 1 < specs.size()) {
                offsets[i + 1] = offsets[i] + count;
            }
            requireColumns(specs.get(i), i, good);
        }
        Integer maxSamples = data.maxSamples();
        JavaPairRDD<DatasetRow, Long> ordered = good.mapToPair(r -> new Tuple2<>(new RowKey(r.dataset(), r.file(), r.row()), r))
                .sortByKey().values().zipWithIndex()
                .filter(t -> t._2() - offsets[t._1().dataset()] < DatasetRules.usedRows(Long.MAX_VALUE, maxSamples));
        ExecutorEncoders.Key encoders = encoderKey;
        List<DatasetSpec> specList = List.copyOf(specs);
        MediaFiles media = HadoopMediaFiles.of(data.mediaDir());   // images are read where their rows are converted
        JavaRDD<Encoded> encoded = ordered.mapPartitions(it -> encodePartition(it, encoders, specList, media, prompts))
                .persist(StorageLevel.MEMORY_AND_DISK());
        reportDropped(encoded, specs, counts, maxSamples);
        raw.unpersist(false);
        return encoded.filter(Encoded::kept);
    }

    /** Rule 4 on an executor: each row converted and tokenized (or its drop reason), numbered by its row order. */
    private static Iterator<Encoded> encodePartition(Iterator<Tuple2<DatasetRow, Long>> rows, ExecutorEncoders.Key key,
                                                     List<DatasetSpec> specs, MediaFiles media, boolean prompts)
            throws IOException {
        SupervisedEncoder encoder = ExecutorEncoders.get(key);
        List<Encoded> out = new ArrayList<>();
        while (rows.hasNext()) {
            Tuple2<DatasetRow, Long> t = rows.next();
            DatasetRow r = t._1();
            DatasetRules.Converted c = DatasetRules.convert(specs.get(r.dataset()), r, t._2(), media);
            if (c.conversation() == null) {
                out.add(new Encoded(r.dataset(), t._2(), null, null, c.dropped()));
                continue;
            }
            synchronized (encoder) {   // tasks of one executor share the encoder
                out.add(prompts ? new Encoded(r.dataset(), t._2(), null, Predictor.Prompt.of(encoder, c.conversation()), null)
                        : new Encoded(r.dataset(), t._2(), encoder.encode(c.conversation()), null, null));
            }
        }
        return out.iterator();
    }

    /** Rule 2's column check, on a sample first and on every row before failing. */
    private static void requireColumns(DatasetSpec spec, int dataset, JavaRDD<DatasetRow> good) {
        JavaRDD<DatasetRow> mine = good.filter(r -> r.dataset() == dataset);
        List<DatasetRow> sample = mine.take(100);
        for (String[] column : DatasetRules.requiredColumns(spec)) {
            if (sample.stream().anyMatch(row -> row.value().has(column[1]))) {
                continue;
            }
            if (mine.filter(r -> r.value().has(column[1])).isEmpty()) {
                throw DatasetRules.missingColumn(spec, column, sample.get(0).value());
            }
        }
    }

    /** Rule 4's report per dataset, from the dropped rows' counts and the first of them in row order. */
    private static void reportDropped(JavaRDD<Encoded> encoded, List<DatasetSpec> specs, Map<Integer, Long> rowCounts,
                                      Integer maxSamples) {
        JavaRDD<Encoded> dropped = encoded.filter(e -> !e.kept());
        Map<Integer, Long> droppedCounts = dropped.map(Encoded::dataset).countByValue();
        for (int i = 0; i < specs.size(); i++) {
            long n = droppedCounts.getOrDefault(i, 0L);
            int dataset = i;
            String first = n == 0 ? null : dropped.filter(e -> e.dataset() == dataset)
                    .takeOrdered(1, (Comparator<Encoded> & Serializable) (a, b) -> Long.compare(a.order(), b.order()))
                    .get(0).dropped();
            DatasetRules.reportDropped(specs.get(i), DatasetRules.usedRows(rowCounts.get(i), maxSamples), n, first);
        }
    }

    /** Prompts renumbered 0..n-1 in their current order. */
    private static JavaRDD<Predictor.Prompt> reindexPrompts(JavaRDD<Predictor.Prompt> prompts) {
        return prompts.zipWithIndex().map(t -> new Predictor.Prompt(t._2(), t._1().prompt(), t._1().label(), t._1().images()));
    }

    /** Examples renumbered 0..n-1 in their current order. */
    private static JavaRDD<TokenizedExample> reindex(JavaRDD<TokenizedExample> examples) {
        return examples.zipWithIndex().map(t -> t._1().withIndex(t._2()));
    }
}
