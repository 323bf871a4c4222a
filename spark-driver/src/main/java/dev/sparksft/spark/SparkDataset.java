package dev.sparksft.spark;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.DataArguments;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.DatasetInfo;
import dev.sparksft.data.DatasetLoader;
import dev.sparksft.data.DatasetSpec;
import dev.sparksft.data.JsonRecords;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.generate.Predictor;
import dev.sparksft.template.SupervisedEncoder;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

/**
 * The training (and eval) examples read and tokenized by Spark, with the same result as
 * trainer-core's single-process loader: datasets in config order, files in path order, rows in
 * file order; max_samples per dataset; LLaMA-Factory's invalid examples dropped with one warning;
 * dense indices 0..n-1 over the kept examples; the seeded val_size split. Files come from any
 * Hadoop path (JSON, JSON Lines, Parquet). A malformed row (not JSON, not an object) refuses the
 * run, naming its file and line, unless skip_bad_rows.
 */
final class SparkDataset {
    private static final Logger LOG = LoggerFactory.getLogger(SparkDataset.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int SHOWN = 3;

    /** The tokenized training set (indexed 0..numTrain-1, not yet ordered for training) and the eval set. */
    record Loaded(JavaRDD<TokenizedExample> train, int numTrain, List<TokenizedExample> eval) {}

    /** One row of a dataset file as text, or why it is malformed ({@code json} null then). */
    record RawRow(int dataset, String file, long row, String source, String json, String malformed)
            implements Serializable {}

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

    private final SparkSession spark;
    private final JavaSparkContext jsc;
    private final DataArguments data;
    private final ExecutorEncoders.Key encoderKey;
    private final boolean skipBadRows;

    SparkDataset(SparkSession spark, DataArguments data, ExecutorEncoders.Key encoderKey, boolean skipBadRows) {
        this.spark = spark;
        this.jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        this.data = data;
        this.encoderKey = encoderKey;
        this.skipBadRows = skipBadRows;
    }

    Loaded load(long seed) {
        JavaRDD<TokenizedExample> all = encode(resolve(data.dataset()), "dataset");
        long n = all.count();
        List<TokenizedExample> eval = List.of();
        JavaRDD<TokenizedExample> train = all;
        if (data.valSize() > 0) {
            Broadcast<boolean[]> isEval = jsc.broadcast(data.validationSplit(Math.toIntExact(n), seed));
            eval = reindex(all.filter(ex -> isEval.value()[(int) ex.index()])).collect();
            train = reindex(all.filter(ex -> !isEval.value()[(int) ex.index()]));
            n -= eval.size();
        } else if (!data.evalDataset().isEmpty()) {
            eval = encode(resolve(data.evalDataset()), "eval_dataset").collect();
        }
        if (data.packing() && n > 0) {
            train = pack(train);
            n = train.count();
        }
        return new Loaded(train.persist(StorageLevel.MEMORY_AND_DISK()), Math.toIntExact(n), eval);
    }

    /**
     * packing: the driver groups the examples by {@link Packing#assign} from their lengths alone
     * (the same packs as one process makes), executors concatenate each pack's examples.
     */
    private JavaRDD<TokenizedExample> pack(JavaRDD<TokenizedExample> train) {
        List<scala.Tuple2<Long, Integer>> lengths = train.map(ex -> new scala.Tuple2<>(ex.index(), ex.length())).collect();
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
        return train.mapToPair(ex -> new scala.Tuple2<>(where.value()[(int) ex.index()] / n,
                        new scala.Tuple2<>(where.value()[(int) ex.index()] % n, ex)))
                .groupByKey()
                .map(g -> {
                    List<scala.Tuple2<Long, TokenizedExample>> members = new java.util.ArrayList<>();
                    g._2().forEach(members::add);
                    members.sort(java.util.Comparator.comparing(scala.Tuple2::_1));
                    return Packing.concat(g._1(), members.stream().map(scala.Tuple2::_2).toList(), neat);
                });
    }

    /**
     * The datasets of {@code names}: entries of dataset_dir/dataset_info.json, files under
     * dataset_dir (both may be on a Hadoop URI), or any Hadoop URI given directly.
     */
    private List<DatasetSpec> resolve(List<String> names) {
        String datasetDir = data.datasetDir();
        Path localDir = Locations.localOrNull(datasetDir);
        boolean remoteDir = localDir == null;
        List<DatasetSpec> specs = new ArrayList<>();
        try {
            // dataset_info.json read locally: as it is, or a copy of the remote one
            Path infoDir = remoteDir ? fetchInfo(datasetDir) : localDir;
            for (String name : names) {
                if (Locations.hasScheme(name)) {
                    specs.add(DatasetSpec.defaults(name, name, detectFormatting(name)));
                } else if (DatasetInfo.defines(name, infoDir)) {
                    DatasetSpec spec = DatasetInfo.resolve(List.of(name), infoDir).get(0);
                    Path file = Path.of(spec.path());
                    String uri = Locations.hasScheme(spec.path()) ? spec.path()
                            : remoteDir && file.startsWith(infoDir) ? join(datasetDir, infoDir.relativize(file).toString())
                            : file.toAbsolutePath().toUri().toString();
                    specs.add(withPath(spec, uri));
                } else {
                    // a file or folder, read (and its formatting detected) by Spark: bad rows are reported, not thrown
                    String uri = directUri(name, datasetDir, remoteDir, infoDir);
                    specs.add(DatasetSpec.defaults(name, uri, detectFormatting(uri)));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return specs;
    }

    private String directUri(String name, String datasetDir, boolean remoteDir, Path infoDir) throws IOException {
        if (remoteDir) {
            String uri = join(datasetDir, name);
            org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
            if (p.getFileSystem(jsc.hadoopConfiguration()).exists(p)) {
                return uri;
            }
        } else {
            Path direct = DatasetInfo.directPath(name, infoDir);
            if (direct != null) {
                return direct.toAbsolutePath().toUri().toString();
            }
        }
        throw new UserError("dataset: '" + name + "' is neither defined in " + join(datasetDir,
                DatasetInfo.FILE) + " nor a file or folder under dataset_dir " + datasetDir + "; set dataset_dir to the folder "
                + "of dataset_info.json, or give a path or URI of .json/.jsonl/.parquet data");
    }

    /** A local folder holding a copy of the remote dataset_dir's dataset_info.json (empty when it has none). */
    private Path fetchInfo(String datasetDir) throws IOException {
        Path local = Files.createTempDirectory("spark-sft-dataset-info");
        org.apache.hadoop.fs.Path info = new org.apache.hadoop.fs.Path(join(datasetDir, DatasetInfo.FILE));
        FileSystem fs = info.getFileSystem(jsc.hadoopConfiguration());
        if (fs.exists(info)) {
            fs.copyToLocalFile(false, info, new org.apache.hadoop.fs.Path(local.resolve(DatasetInfo.FILE).toUri()), true);
        }
        return local;
    }

    private static String join(String uri, String child) {
        return uri.endsWith("/") ? uri + child : uri + "/" + child;
    }

    private DatasetSpec.Formatting detectFormatting(String uri) {
        List<RawRow> first = rows(0, uri).filter(r -> r.json() != null).take(1);
        if (first.isEmpty()) {
            throw new UserError("dataset " + uri + " is empty (no well-formed row)");
        }
        return DatasetInfo.formattingOf(parse(first.get(0).json()), "dataset " + uri, first.get(0).source());
    }

    /** Rows of dataset number {@code dataset} at {@code uri}: Parquet files, else JSON / JSON Lines files. */
    private JavaRDD<RawRow> rows(int dataset, String uri) {
        if (isParquet(uri)) {
            Dataset<Row> df = spark.read().parquet(uri);
            String name = new org.apache.hadoop.fs.Path(uri).getName();
            return df.select(functions.input_file_name(), functions.to_json(functions.struct(functions.col("*"))))
                    .javaRDD().zipWithIndex()
                    .map(t -> new RawRow(dataset, t._1().getString(0), t._2(), name + " row " + (t._2() + 1),
                            t._1().getString(1), null));
        }
        return jsc.wholeTextFiles(uri).filter(f -> JsonRecords.isJsonName(f._1()))
                .flatMap(f -> {
                    List<String> malformed = new ArrayList<>();
                    String fileName = new org.apache.hadoop.fs.Path(f._1()).getName();
                    List<JsonRecords.Row> parsed = JsonRecords.parse(fileName, f._1(), f._2(), malformed);
                    List<RawRow> out = new ArrayList<>(parsed.size() + malformed.size());
                    for (int i = 0; i < parsed.size(); i++) {
                        JsonRecords.Row r = parsed.get(i);
                        out.add(new RawRow(dataset, f._1(), i, r.source(), JSON.writeValueAsString(r.value()), null));
                    }
                    for (String m : malformed) {
                        out.add(new RawRow(dataset, f._1(), -1, m, null, m));
                    }
                    return out.iterator();
                });
    }

    private boolean isParquet(String uri) {
        if (uri.endsWith(".parquet")) {
            return true;
        }
        try {
            org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
            FileSystem fs = p.getFileSystem(jsc.hadoopConfiguration());
            if (!fs.exists(p)) {
                throw new UserError("dataset file " + uri + " does not exist");
            }
            if (!fs.getFileStatus(p).isDirectory()) {
                return false;
            }
            for (FileStatus s : fs.listStatus(p)) {
                if (s.getPath().getName().endsWith(".parquet")) {
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list dataset " + uri, e);
        }
    }

    /** Read, check, convert and tokenize {@code specs}; examples indexed densely in dataset/file/row order. */
    private JavaRDD<TokenizedExample> encode(List<DatasetSpec> specs, String key) {
        return reindex(encoded(specs, key, false).map(Encoded::example));
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
            throw new UserError("do_predict needs a predict set: set eval_dataset (or val_size)");
        }
        return reindexPrompts(encoded(resolve(data.evalDataset()), "eval_dataset", true).map(Encoded::prompt));
    }

    /** The kept rows of {@code specs}, converted, in dataset/file/row order; {@code prompts}: for generation. */
    private JavaRDD<Encoded> encoded(List<DatasetSpec> specs, String key, boolean prompts) {
        List<JavaRDD<RawRow>> parts = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            if (specs.get(i).numSamples() != null) {
                throw new UserError("dataset '" + specs.get(i).name() + "': num_samples is not implemented "
                        + "yet; use max_samples");
            }
            parts.add(rows(i, specs.get(i).path()));
        }
        JavaRDD<RawRow> raw = jsc.union(parts.toArray(new JavaRDD[0])).persist(StorageLevel.MEMORY_AND_DISK());
        rejectMalformed(raw);
        JavaRDD<RawRow> good = raw.filter(r -> r.malformed() == null);
        Map<Integer, Long> counts = good.map(RawRow::dataset).countByValue();
        long[] offsets = new long[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            long count = counts.getOrDefault(i, 0L);
            if (count == 0) {
                throw new UserError(key + ": dataset '" + specs.get(i).name() + "' (" + specs.get(i).path()
                        + ") is empty");
            }
            if (i + 1 < specs.size()) {
                offsets[i + 1] = offsets[i] + count;
            }
            requireColumns(specs.get(i), i, good);
        }
        Integer maxSamples = data.maxSamples();
        JavaPairRDD<RawRow, Long> ordered = good.mapToPair(r -> new Tuple2<>(new RowKey(r.dataset(), r.file(), r.row()), r))
                .sortByKey().values().zipWithIndex()
                .filter(t -> maxSamples == null || t._2() - offsets[t._1().dataset()] < maxSamples);
        ExecutorEncoders.Key encoders = encoderKey;
        List<DatasetSpec> specList = List.copyOf(specs);
        JavaRDD<Encoded> encoded = ordered.mapPartitions(it -> encodePartition(it, encoders, specList, prompts))
                .persist(StorageLevel.MEMORY_AND_DISK());
        reportDropped(encoded, specs, counts, maxSamples);
        raw.unpersist(false);
        return encoded.filter(Encoded::kept);
    }

    private static Iterator<Encoded> encodePartition(Iterator<Tuple2<RawRow, Long>> rows, ExecutorEncoders.Key key,
                                                     List<DatasetSpec> specs, boolean prompts) throws IOException {
        SupervisedEncoder encoder = ExecutorEncoders.get(key);
        List<Encoded> out = new ArrayList<>();
        while (rows.hasNext()) {
            Tuple2<RawRow, Long> t = rows.next();
            RawRow r = t._1();
            String[] reason = new String[1];
            Conversation c = DatasetLoader.convert(specs.get(r.dataset()), new JsonRecords.Row(parse(r.json()), r.source()),
                    t._2(), why -> reason[0] = why);
            if (c == null) {
                out.add(new Encoded(r.dataset(), t._2(), null, null, reason[0]));
                continue;
            }
            synchronized (encoder) {   // tasks of one executor share the encoder
                out.add(prompts ? new Encoded(r.dataset(), t._2(), null, Predictor.Prompt.of(encoder, c), null)
                        : new Encoded(r.dataset(), t._2(), encoder.encode(c), null, null));
            }
        }
        return out.iterator();
    }

    private void rejectMalformed(JavaRDD<RawRow> raw) {
        JavaRDD<RawRow> bad = raw.filter(r -> r.malformed() != null);
        long count = bad.count();
        if (count == 0) {
            return;
        }
        List<String> first = bad.map(RawRow::malformed).takeOrdered(SHOWN);
        String shown = String.join("; ", first) + (count > first.size() ? "; ..." : "");
        if (!skipBadRows) {
            throw new UserError(count + " malformed row(s) in the dataset: " + shown
                    + ". Fix them, or set skip_bad_rows: true to train without them");
        }
        LOG.warn("skip_bad_rows: skipping {} malformed row(s): {}", count, shown);
    }

    /** Same rule as the single-process loader, checked on a sample first and on every row before failing. */
    private static void requireColumns(DatasetSpec spec, int dataset, JavaRDD<RawRow> good) {
        JavaRDD<RawRow> mine = good.filter(r -> r.dataset() == dataset);
        List<JsonNode> sample = mine.take(100).stream().map(r -> parse(r.json())).toList();
        for (String[] column : DatasetLoader.requiredColumns(spec)) {
            if (sample.stream().anyMatch(row -> row.has(column[1]))) {
                continue;
            }
            if (mine.filter(r -> parse(r.json()).has(column[1])).isEmpty()) {
                throw DatasetLoader.missingColumn(spec, column, sample.get(0));
            }
        }
    }

    private static void reportDropped(JavaRDD<Encoded> encoded, List<DatasetSpec> specs, Map<Integer, Long> rowCounts,
                                      Integer maxSamples) {
        JavaRDD<Encoded> dropped = encoded.filter(e -> !e.kept());
        Map<Integer, Long> droppedCounts = dropped.map(Encoded::dataset).countByValue();
        for (int i = 0; i < specs.size(); i++) {
            long n = droppedCounts.getOrDefault(i, 0L);
            if (n == 0) {
                continue;
            }
            int dataset = i;
            String first = dropped.filter(e -> e.dataset() == dataset)
                    .takeOrdered(1, (Comparator<Encoded> & Serializable) (a, b) -> Long.compare(a.order(), b.order()))
                    .get(0).dropped();
            long rows = maxSamples == null ? rowCounts.get(i) : Math.min(maxSamples, rowCounts.get(i));
            if (n == rows) {
                throw new UserError("dataset '" + specs.get(i).name() + "' has no valid example: all " + n
                        + " were dropped; first: " + first);
            }
            LOG.warn("Dropped {} invalid example(s) of {} in dataset '{}'; first: {}", n, rows, specs.get(i).name(), first);
        }
    }

    /** Prompts renumbered 0..n-1 in their current order. */
    private static JavaRDD<Predictor.Prompt> reindexPrompts(JavaRDD<Predictor.Prompt> prompts) {
        return prompts.zipWithIndex().map(t -> new Predictor.Prompt(t._2(), t._1().prompt(), t._1().label()));
    }

    /** Examples renumbered 0..n-1 in their current order. */
    private static JavaRDD<TokenizedExample> reindex(JavaRDD<TokenizedExample> examples) {
        return examples.zipWithIndex().map(t -> t._1().withIndex(t._2()));
    }

    private static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static DatasetSpec withPath(DatasetSpec s, String path) {
        return new DatasetSpec(s.name(), path, s.formatting(), s.numSamples(), s.prompt(), s.query(), s.response(),
                s.history(), s.messages(), s.system(), s.tools(), s.roleTag(), s.contentTag(), s.userTag(),
                s.assistantTag(), s.observationTag(), s.functionTag(), s.systemTag());
    }
}
