package dev.sparksft.tokenizer;

import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A Hugging Face fast tokenizer ({@code tokenizer.json}, run by DJL's binding of the Rust
 * {@code tokenizers} library) plus the special tokens of {@code tokenizer_config.json}.
 *
 * <p>Text is always encoded without adding special tokens: chat templates place bos/eos
 * themselves. Copies made by {@link #withSpecialTokens} share the native tokenizer.
 */
public final class Tokenizer implements AutoCloseable {

    private final HuggingFaceTokenizer hf;
    private final Map<String, Integer> tokenToId;
    private final int vocabSize;
    private final SpecialTokens special;

    /** bos/eos/pad as token strings; any may be null. */
    public record SpecialTokens(String bos, String eos, String pad) {}

    private Tokenizer(HuggingFaceTokenizer hf, Map<String, Integer> tokenToId, int vocabSize, SpecialTokens special) {
        this.hf = hf;
        this.tokenToId = tokenToId;
        this.vocabSize = vocabSize;
        this.special = special;
    }

    /** Loads {@code dir/tokenizer.json} and {@code dir/tokenizer_config.json}. */
    public static Tokenizer load(Path dir) throws IOException {
        Path json = dir.resolve("tokenizer.json");
        Path config = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(json)) {
            throw new UserError("tokenizer directory " + dir + " has no tokenizer.json: spark-sft needs a "
                    + "fast tokenizer; convert a slow one with transformers' AutoTokenizer.from_pretrained(dir)"
                    + ".save_pretrained(dir)");
        }
        if (!Files.isRegularFile(config)) {
            throw new UserError("tokenizer directory " + dir + " has no tokenizer_config.json, which "
                    + "names the bos/eos/pad tokens: copy it from the model's original repository");
        }
        JsonNode tok = JsonFiles.read(json);
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = tok.path("model").path("vocab");
        if (vocab.isObject()) { // BPE, WordPiece, WordLevel
            vocab.fields().forEachRemaining(e -> ids.put(e.getKey(), e.getValue().asInt()));
        } else if (vocab.isArray()) { // Unigram: [[piece, score], ...]
            for (int i = 0; i < vocab.size(); i++) {
                ids.put(vocab.get(i).get(0).asText(), i);
            }
        }
        for (JsonNode added : tok.path("added_tokens")) {
            ids.put(added.get("content").asText(), added.get("id").asInt());
        }
        JsonNode cfg = JsonFiles.read(config);
        cfg.path("added_tokens_decoder").fields().forEachRemaining(
                e -> ids.putIfAbsent(e.getValue().path("content").asText(), Integer.parseInt(e.getKey())));
        int vocabSize = ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        SpecialTokens special = new SpecialTokens(tokenText(cfg.get("bos_token")), tokenText(cfg.get("eos_token")),
                tokenText(cfg.get("pad_token")));
        HuggingFaceTokenizer hf = HuggingFaceTokenizer.builder()
                .optTokenizerPath(json)
                .optAddSpecialTokens(false)
                .optTruncation(false)
                .optPadding(false)
                .build();
        Tokenizer t = new Tokenizer(hf, Map.copyOf(ids), vocabSize, special);
        for (String s : new String[] {special.bos(), special.eos(), special.pad()}) {
            if (s != null && t.tokenId(s).isEmpty()) {
                throw new UserError(config + " names special token '" + s
                        + "', which tokenizer.json does not contain");
            }
        }
        return t;
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
        return new Tokenizer(hf, tokenToId, vocabSize, tokens);
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
