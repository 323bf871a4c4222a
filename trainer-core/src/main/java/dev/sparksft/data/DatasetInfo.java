package dev.sparksft.data;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.Suggest;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Resolves dataset names to {@link DatasetSpec}s: through {@code dataset_dir/dataset_info.json}
 * (LLaMA-Factory's file_name, formatting, columns, tags), or, for a name that is a path to a
 * .json/.jsonl file, by reading the formatting off the first row's keys.
 */
public final class DatasetInfo {
    private static final Logger LOG = LoggerFactory.getLogger(DatasetInfo.class);
    public static final String FILE = "dataset_info.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private DatasetInfo() {}

    /** {@link #resolve(List, DatasetSource)} for a local dataset_dir. */
    public static List<DatasetSpec> resolve(List<String> names, Path datasetDir) throws IOException {
        return resolve(names, new LocalDatasetSource(datasetDir));
    }

    /**
     * The datasets {@code names} refer to: entries of dataset_dir/dataset_info.json, else data
     * files or folders (under dataset_dir, or as given), whose formatting is read off the first
     * row's keys.
     */
    public static List<DatasetSpec> resolve(List<String> names, DatasetSource source) throws IOException {
        JsonNode info = source.datasetInfo();
        String infoFile = join(source.datasetDir(), FILE);
        List<DatasetSpec> specs = new ArrayList<>();
        for (String name : names) {
            if (info != null && info.has(name)) {
                specs.add(fromInfo(name, info.get(name), source, infoFile));
                continue;
            }
            String direct = source.locate(name);
            if (direct != null) {
                specs.add(DatasetSpec.defaults(name, direct, detectFormatting(direct, source)));
                continue;
            }
            List<String> defined = new ArrayList<>();
            if (info != null) {
                info.fieldNames().forEachRemaining(defined::add);
            }
            throw new UserError("dataset: '" + name + "' is neither defined in " + infoFile
                    + (info == null ? " (which does not exist)" : Suggest.didYouMean(name, defined))
                    + " nor a file or folder; set dataset_dir to the folder of dataset_info.json or give a path to "
                    + ".json/.jsonl/.parquet data");
        }
        return specs;
    }

    /** An absolute path, a URI, or a relative path that climbs out of its folder ("../x.json"). */
    static boolean isOutsideDatasetDir(String fileName) {
        if (fileName.matches("[A-Za-z][A-Za-z0-9+.-]*:.*")) {
            return true;
        }
        Path p = Path.of(fileName);
        return p.isAbsolute() || p.normalize().startsWith("..");
    }

    /** {@code child} under the folder (path or URI) {@code dir}. */
    public static String join(String dir, String child) {
        return dir.endsWith("/") ? dir + child : dir + "/" + child;
    }

    private static DatasetSpec fromInfo(String name, JsonNode e, DatasetSource source, String infoFile) {
        for (String remote : List.of("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")) {
            if (e.has(remote) && !e.has("file_name")) {
                throw new UserError(infoFile + ": dataset '" + name + "' uses " + remote
                        + ", but spark-sft reads only local or Hadoop files: download it and set file_name");
            }
        }
        if (!e.hasNonNull("file_name")) {
            throw new UserError(infoFile + ": dataset '" + name + "' has no file_name");
        }
        if (e.path("ranking").asBoolean(false)) {
            throw new UserError(infoFile + ": dataset '" + name + "' is a ranking (preference) dataset; "
                    + "spark-sft trains sft only");
        }
        String formattingText = e.path("formatting").asText("alpaca");
        DatasetSpec.Formatting formatting;
        try {
            formatting = DatasetSpec.Formatting.valueOf(formattingText.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException bad) {
            throw new UserError(infoFile + ": dataset '" + name + "' has formatting '" + formattingText
                    + "'; expected alpaca, sharegpt or openai");
        }
        String fileName = e.get("file_name").asText();
        String path = source.resolveFileName(fileName);
        if (isOutsideDatasetDir(fileName)) {   // LLaMA-Factory reads it too; say where it really is
            LOG.info("{}: dataset '{}' has file_name '{}', outside dataset_dir: reading {}", infoFile, name, fileName, path);
        }
        DatasetSpec d = DatasetSpec.defaults(name, path, formatting);
        JsonNode c = e.path("columns");
        JsonNode t = e.path("tags");
        checkKeys(c, List.of("prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos",
                "audios", "chosen", "rejected", "kto_tag"), infoFile, name, "columns");
        checkKeys(t, List.of("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                "system_tag"), infoFile, name, "tags");
        for (String media : List.of("videos", "audios")) {
            if (c.hasNonNull(media)) {
                throw new UserError(infoFile + ": dataset '" + name + "' has columns." + media + " ('"
                        + c.get(media).asText() + "'): " + media + " are not supported yet (images are, with "
                        + "template: qwen2_vl); remove columns." + media + " from its entry");
            }
        }
        for (String pref : List.of("chosen", "rejected", "kto_tag")) {
            if (c.hasNonNull(pref)) {
                throw new UserError(infoFile + ": dataset '" + name + "' has columns." + pref
                        + ", which spark-sft does not support (preference data; spark-sft trains sft)");
            }
        }
        // LLaMA-Factory's DatasetAttr.join: a columns (tags) object sets every column (tag) it does not name to null.
        boolean hasColumns = e.has("columns");
        boolean hasTags = e.has("tags");
        return new DatasetSpec(name, path, formatting, e.hasNonNull("num_samples") ? e.get("num_samples").asInt() : null,
                col(c, "prompt", d.prompt(), hasColumns), col(c, "query", d.query(), hasColumns),
                col(c, "response", d.response(), hasColumns), col(c, "history", d.history(), hasColumns),
                col(c, "messages", d.messages(), hasColumns), col(c, "system", d.system(), hasColumns),
                col(c, "tools", d.tools(), hasColumns), col(c, "images", d.images(), hasColumns),
                col(t, "role_tag", d.roleTag(), hasTags), col(t, "content_tag", d.contentTag(), hasTags),
                col(t, "user_tag", d.userTag(), hasTags), col(t, "assistant_tag", d.assistantTag(), hasTags),
                col(t, "observation_tag", d.observationTag(), hasTags), col(t, "function_tag", d.functionTag(), hasTags),
                col(t, "system_tag", d.systemTag(), hasTags));
    }

    private static String col(JsonNode obj, String key, String fallback, boolean nullWhenAbsent) {
        if (obj.hasNonNull(key)) {
            return obj.get(key).asText();
        }
        return nullWhenAbsent ? null : fallback;
    }

    private static void checkKeys(JsonNode obj, List<String> allowed, String infoFile, String name, String what) {
        obj.fieldNames().forEachRemaining(k -> {
            if (!allowed.contains(k)) {
                throw new UserError(infoFile + ": dataset '" + name + "' has unknown " + what + " key '" + k
                        + "'" + Suggest.didYouMean(k, allowed));
            }
        });
    }

    /** alpaca when rows have "instruction", sharegpt for "conversations", openai for "messages". */
    static DatasetSpec.Formatting detectFormatting(String location, DatasetSource source) throws IOException {
        List<DatasetRow> rows = source.firstFileRows(location);
        DatasetRow first = rows.stream().filter(r -> !r.isMalformed()).findFirst().orElseThrow(() -> new UserError(
                rows.isEmpty() ? "dataset " + location + " is empty" : rows.get(0).malformed()));
        return formattingOf(first.value(), "dataset " + location, first.source());
    }

    /** The formatting rows with {@code first}'s keys have; {@code file} and {@code source} name it in errors. */
    public static DatasetSpec.Formatting formattingOf(JsonNode first, String file, String source) {
        for (Map.Entry<String, DatasetSpec.Formatting> e : Map.of("instruction", DatasetSpec.Formatting.ALPACA,
                "conversations", DatasetSpec.Formatting.SHAREGPT, "messages", DatasetSpec.Formatting.OPENAI).entrySet()) {
            if (first.has(e.getKey())) {
                return e.getValue();
            }
        }
        List<String> keys = new ArrayList<>();
        first.fieldNames().forEachRemaining(keys::add);
        throw new UserError(file + ": cannot tell its format from the keys " + keys
                + " of " + source + " (alpaca rows have 'instruction', sharegpt rows 'conversations', "
                + "openai rows 'messages'); describe it in dataset_info.json with formatting and columns");
    }
}
