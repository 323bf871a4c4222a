package dev.sparksft.tokenizer;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.runtime.DiskWrites;
import java.io.ByteArrayInputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A Hugging Face fast tokenizer ({@code tokenizer.json}, run by DJL's binding of the Rust
 * {@code tokenizers} library) plus the special tokens of {@code tokenizer_config.json}.
 *
 * <p>Text is always encoded without adding special tokens: chat templates place bos/eos
 * themselves. Copies made by {@link #withSpecialTokens} share the native tokenizer; one with
 * tokens added ({@link #withAddedTokens}, LLaMA-Factory's add_tokens and a template's missing stop
 * words) has its own, and remembers the tokens so that {@link #save} writes them with the model.
 */
public final class Tokenizer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer hf;
    private final Map<String, Integer> tokenToId;
    private final int vocabSize;
    private final SpecialTokens special;
    /** tokenizer.json and tokenizer_config.json as read, with the tokens added since (written by {@link #save}). */
    private final ObjectNode json;
    private final ObjectNode config;
    /** The tokens added since loading that transformers counts as added, in the order they were added. */
    private final List<String> added;

    /** bos/eos/pad as token strings; any may be null. */
    public record SpecialTokens(String bos, String eos, String pad) {}

    private Tokenizer(HuggingFaceTokenizer hf, Map<String, Integer> tokenToId, SpecialTokens special,
                      ObjectNode json, ObjectNode config, List<String> added) {
        this.hf = hf;
        this.tokenToId = Map.copyOf(tokenToId);
        this.vocabSize = tokenToId.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        this.special = special;
        this.json = json;
        this.config = config;
        this.added = List.copyOf(added);
    }

    /** Loads {@code dir/tokenizer.json} and {@code dir/tokenizer_config.json}. */
    public static Tokenizer load(Path dir) throws IOException {
        Path jsonFile = dir.resolve("tokenizer.json");
        Path configFile = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(jsonFile)) {
            throw new UserError("tokenizer directory " + dir + " has no tokenizer.json: spark-sft needs a "
                    + "fast tokenizer; convert a slow one with transformers' AutoTokenizer.from_pretrained(dir)"
                    + ".save_pretrained(dir)");
        }
        if (!Files.isRegularFile(configFile)) {
            throw new UserError("tokenizer directory " + dir + " has no tokenizer_config.json, which "
                    + "names the bos/eos/pad tokens: copy it from the model's original repository");
        }
        JsonNode tok = JsonFiles.read(jsonFile);
        JsonNode cfg = JsonFiles.read(configFile);
        if (!tok.isObject() || !cfg.isObject()) {
            throw new UserError("tokenizer directory " + dir + ": tokenizer.json and tokenizer_config.json must "
                    + "each hold a JSON object");
        }
        SpecialTokens special = new SpecialTokens(tokenText(cfg.get("bos_token")), tokenText(cfg.get("eos_token")),
                tokenText(cfg.get("pad_token")));
        Tokenizer t = new Tokenizer(nativeTokenizer(tok), ids((ObjectNode) tok, cfg), special, (ObjectNode) tok,
                (ObjectNode) cfg, List.of());
        for (String s : new String[] {special.bos(), special.eos(), special.pad()}) {
            if (s != null && t.tokenId(s).isEmpty()) {
                throw new UserError(configFile + " names special token '" + s
                        + "', which tokenizer.json does not contain");
            }
        }
        return t;
    }

    /** Every token string's id: the model's vocabulary, tokenizer.json's added tokens, tokenizer_config.json's. */
    private static Map<String, Integer> ids(ObjectNode tok, JsonNode cfg) {
        Map<String, Integer> ids = new HashMap<>(modelVocab(tok));
        for (JsonNode added : tok.path("added_tokens")) {
            ids.put(added.get("content").asText(), added.get("id").asInt());
        }
        cfg.path("added_tokens_decoder").fields().forEachRemaining(
                e -> ids.putIfAbsent(e.getValue().path("content").asText(), Integer.parseInt(e.getKey())));
        return ids;
    }

    /** The model's own vocabulary (without added tokens), token to id. */
    private static Map<String, Integer> modelVocab(JsonNode tok) {
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = tok.path("model").path("vocab");
        if (vocab.isObject()) { // BPE, WordPiece, WordLevel
            vocab.fields().forEachRemaining(e -> ids.put(e.getKey(), e.getValue().asInt()));
        } else if (vocab.isArray()) { // Unigram: [[piece, score], ...]
            for (int i = 0; i < vocab.size(); i++) {
                ids.put(vocab.get(i).get(0).asText(), i);
            }
        }
        return ids;
    }

    /** The Rust tokenizer for a tokenizer.json: it matches added tokens (special, normalized, strip flags) itself. */
    private static HuggingFaceTokenizer nativeTokenizer(JsonNode tok) {
        try {
            byte[] bytes = JSON.writeValueAsBytes(tok);
            return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes),
                    Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("could not build the tokenizer from its tokenizer.json", e);   // in memory: a bug
        }
    }

    /** tokenizer_config.json writes a special token as "text" or {"content": "text", ...}. */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        return n.isObject() ? n.path("content").asText(null) : n.asText();
    }

    /** The same tokenizer with other special tokens (chat templates replace eos, default pad). */
    public Tokenizer withSpecialTokens(SpecialTokens tokens) {
        for (String s : new String[] {tokens.bos(), tokens.eos(), tokens.pad()}) {
            if (s != null && tokenId(s).isEmpty()) {
                throw new UserError("special token '" + s + "' is not in the tokenizer's vocabulary");
            }
        }
        return new Tokenizer(hf, tokenToId, tokens, json, config, added);
    }

    /**
     * This tokenizer with {@code tokens} added as transformers' {@code add_tokens(tokens, special_tokens=special)}
     * adds plain strings to a fast tokenizer: flags {@code normalized = !special}, no strip, not single-word.
     * A token already added with the same flags is skipped; one in the vocabulary (or added with other
     * flags) keeps its id and becomes an added token with these flags; any other gets the next id:
     * the model vocabulary's size, or the highest added id + 1 when that is already at or past it.
     * When a token was added the result has its own native tokenizer, built from the changed
     * tokenizer.json, so that the Rust library matches the new tokens in text exactly as it matches
     * any added token (before the model splits the text; with normalized, after the normalizer).
     */
    public Tokenizer withAddedTokens(List<String> tokens, boolean special) {
        ObjectNode tok = json.deepCopy();
        ArrayNode entries = tok.has("added_tokens") && tok.get("added_tokens").isArray()
                ? (ArrayNode) tok.get("added_tokens") : tok.putArray("added_tokens");
        ObjectNode cfg = config.deepCopy();
        ObjectNode decoder = cfg.has("added_tokens_decoder") && cfg.get("added_tokens_decoder").isObject()
                ? (ObjectNode) cfg.get("added_tokens_decoder") : cfg.putObject("added_tokens_decoder");
        Map<String, Integer> model = modelVocab(tok);
        List<String> counted = new ArrayList<>(added);
        for (String token : tokens) {
            ObjectNode entry = JSON.createObjectNode().put("content", token).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", !special).put("special", special);
            JsonNode same = find(entries, token);
            if (token.isEmpty() || (same != null && flags(same).equals(flags(entry)))) {
                continue;   // transformers counts it as ignored
            }
            int id;
            if (same != null) {
                id = same.get("id").asInt();
            } else if (model.containsKey(token)) {
                id = model.get(token);
            } else {
                int maxAdded = -1;
                for (JsonNode e : entries) {
                    maxAdded = Math.max(maxAdded, e.get("id").asInt());
                }
                id = maxAdded >= model.size() ? maxAdded + 1 : model.size();
            }
            ObjectNode withId = JSON.createObjectNode().put("id", id);
            withId.setAll(entry);
            replaceOrAppend(entries, withId);
            ObjectNode decoded = entry.deepCopy();
            decoded.remove("id");
            decoder.set(String.valueOf(id), decoded);
            counted.add(token);
        }
        if (counted.size() == added.size()) {
            return new Tokenizer(hf, tokenToId, this.special, json, config.deepCopy(), added);   // nothing changed
        }
        List<JsonNode> sorted = new ArrayList<>();
        entries.forEach(sorted::add);
        sorted.sort(java.util.Comparator.comparingInt(e -> e.get("id").asInt()));   // tokenizers writes them by id
        entries.removeAll();
        sorted.forEach(entries::add);
        return new Tokenizer(nativeTokenizer(tok), ids(tok, cfg), this.special, tok, cfg, counted);
    }

    /**
     * transformers' {@code add_special_tokens({"additional_special_tokens": tokens},
     * replace_additional_special_tokens=False)}: the tokens are added as special tokens and appended to
     * tokenizer_config.json's additional_special_tokens (those listed already are left out).
     */
    public Tokenizer withAdditionalSpecialTokens(List<String> tokens) {
        Set<String> listed = new LinkedHashSet<>();
        config.path("additional_special_tokens").forEach(n -> listed.add(tokenText(n)));
        List<String> toAdd = tokens.stream().filter(t -> !listed.contains(t)).toList();
        Tokenizer t = withAddedTokens(toAdd, true);
        ArrayNode list = t.config.putArray("additional_special_tokens");
        listed.forEach(list::add);
        toAdd.forEach(list::add);
        return t;
    }

    private static JsonNode find(ArrayNode entries, String content) {
        for (JsonNode e : entries) {
            if (e.path("content").asText().equals(content)) {
                return e;
            }
        }
        return null;
    }

    private static void replaceOrAppend(ArrayNode entries, ObjectNode entry) {
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).path("content").asText().equals(entry.get("content").asText())) {
                entries.set(i, entry);
                return;
            }
        }
        entries.add(entry);
    }

    /** An added token's flags, the fields tokenizers compares two added tokens by besides the content. */
    private static List<Boolean> flags(JsonNode e) {
        return List.of(e.path("single_word").asBoolean(false), e.path("lstrip").asBoolean(false),
                e.path("rstrip").asBoolean(false), e.path("normalized").asBoolean(true), e.path("special").asBoolean(false));
    }

    /** The tokens added since loading that transformers counts as added (a new id or new flags), in order. */
    public List<String> addedTokens() {
        return added;
    }

    /**
     * transformers' {@code len(tokenizer)}: the number of distinct tokens, vocabulary and added ones
     * (LLaMA-Factory resizes the embedding when it exceeds the embedding's rows).
     */
    public int length() {
        return tokenToId.size();
    }

    /**
     * Writes tokenizer.json and tokenizer_config.json into {@code dir} as transformers' save_pretrained
     * writes this tokenizer: the added tokens in tokenizer.json's added_tokens and in
     * tokenizer_config.json's added_tokens_decoder, and bos/eos/pad as this tokenizer uses them; every
     * other key as it was read.
     */
    public void save(Path dir) throws IOException {
        ObjectNode cfg = config.deepCopy();
        for (String[] key : new String[][] {{"bos_token", special.bos()}, {"eos_token", special.eos()},
                {"pad_token", special.pad()}}) {
            if (key[1] == null) {
                cfg.putNull(key[0]);
            } else {
                cfg.put(key[0], key[1]);
            }
        }
        DiskWrites.writeString(dir.resolve("tokenizer.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
        DiskWrites.writeString(dir.resolve("tokenizer_config.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
    }

    /** Token ids of {@code text}, without special tokens added around it. */
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        long[] ids = hf.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = (int) ids[i];
        }
        return out;
    }

    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] longs = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            longs[i] = ids[i];
        }
        return hf.decode(longs, skipSpecialTokens);
    }

    /** The id of a whole token string (vocabulary entry or added token). */
    public Optional<Integer> tokenId(String token) {
        return Optional.ofNullable(tokenToId.get(token));
    }

    /** Highest token id + 1, counting added tokens: the smallest embedding that covers every id. */
    public int vocabSize() {
        return vocabSize;
    }

    public SpecialTokens specialTokens() {
        return special;
    }

    public Integer bosId() {
        return special.bos() == null ? null : tokenToId.get(special.bos());
    }

    public Integer eosId() {
        return special.eos() == null ? null : tokenToId.get(special.eos());
    }

    public Integer padId() {
        return special.pad() == null ? null : tokenToId.get(special.pad());
    }

    @Override
    public void close() {
        hf.close();
    }
}
