package dev.sparksft.tokenizer;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Trains and writes a small byte-level BPE tokenizer in the Hugging Face {@code tokenizer.json}
 * format (GPT-2 byte-to-unicode alphabet, ByteLevel pre-tokenizer and decoder).
 *
 * <p>Token ids 0..255 are the raw bytes (id == byte value, which makes hand-written test
 * expectations easy), then one id per learned merge, then the special tokens.
 */
public final class ByteLevelBpe {
    /** GPT-2's pre-tokenization split, as the ByteLevel pre-tokenizer applies it. */
    private static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final char[] BYTE_TO_CHAR = byteToUnicode();

    private final List<String[]> merges;
    private final List<String> specialTokens;

    private ByteLevelBpe(List<String[]> merges, List<String> specialTokens) {
        this.merges = merges;
        this.specialTokens = specialTokens;
    }

    /** GPT-2's reversible map from bytes to printable unicode characters. */
    private static char[] byteToUnicode() {
        char[] map = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) {
            printable[b] = true;
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            printable[b] = true;
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            printable[b] = true;
        }
        int next = 256;
        for (int b = 0; b < 256; b++) {
            map[b] = printable[b] ? (char) b : (char) next++;
        }
        return map;
    }

    private static List<String> symbols(String word) {
        List<String> out = new ArrayList<>();
        for (byte b : word.getBytes(StandardCharsets.UTF_8)) {
            out.add(String.valueOf(BYTE_TO_CHAR[b & 0xFF]));
        }
        return out;
    }

    /**
     * Learns up to {@code numMerges} merges from {@code corpus} (most frequent adjacent pair first,
     * ties broken by the pair's text so that training is deterministic), stopping early when no
     * pair occurs twice.
     */
    public static ByteLevelBpe train(String corpus, int numMerges, List<String> specialTokens) {
        Map<String, Integer> wordCounts = new LinkedHashMap<>();
        Matcher m = GPT2_SPLIT.matcher(corpus);
        while (m.find()) {
            wordCounts.merge(m.group(), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        wordCounts.forEach((w, c) -> {
            words.add(symbols(w));
            counts.add(c);
        });
        List<String[]> merges = new ArrayList<>();
        for (int k = 0; k < numMerges; k++) {
            Map<String, Integer> pairCounts = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) {
                    pairCounts.merge(s.get(i) + "\u0000" + s.get(i + 1), counts.get(w), Integer::sum);
                }
            }
            String best = null;
            int bestCount = 1;
            for (Map.Entry<String, Integer> e : pairCounts.entrySet()) {
                if (e.getValue() > bestCount || (e.getValue() == bestCount && best != null && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                    bestCount = e.getValue();
                }
            }
            if (best == null) {
                break;
            }
            String[] pair = best.split("\u0000", -1);
            merges.add(pair);
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(pair[0]) && s.get(i + 1).equals(pair[1])) {
                        s.set(i, pair[0] + pair[1]);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return new ByteLevelBpe(merges, List.copyOf(specialTokens));
    }

    public int vocabSize() {
        return 256 + merges.size() + specialTokens.size();
    }

    public int specialTokenId(String token) {
        int i = specialTokens.indexOf(token);
        if (i < 0) {
            throw new UserError("'" + token + "' is not one of the special tokens " + specialTokens);
        }
        return 256 + merges.size() + i;
    }

    /**
     * Writes {@code tokenizer.json} and {@code tokenizer_config.json} into {@code dir}.
     *
     * @param special      bos/eos/pad (each one of the special tokens, or null)
     * @param chatTemplate the Jinja chat template recorded in tokenizer_config.json
     */
    public void write(Path dir, Tokenizer.SpecialTokens special, String chatTemplate) throws IOException {
        Files.createDirectories(dir);
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String s : specialTokens) {
            added.addObject().put("id", specialTokenId(s)).put("content", s).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        root.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", false).put("use_regex", true);
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout").putNull("unk_token").putNull("continuing_subword_prefix")
                .putNull("end_of_word_suffix").put("fuse_unk", false).put("byte_fallback", false)
                .put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(BYTE_TO_CHAR[b]), b);
        }
        for (int k = 0; k < merges.size(); k++) {
            vocab.put(merges.get(k)[0] + merges.get(k)[1], 256 + k);
        }
        ArrayNode mergeList = model.putArray("merges");
        merges.forEach(p -> mergeList.add(p[0] + " " + p[1]));
        Files.writeString(dir.resolve("tokenizer.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));

        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("add_bos_token", false).put("add_eos_token", false);
        ObjectNode decoder = cfg.putObject("added_tokens_decoder");
        for (String s : specialTokens) {
            decoder.putObject(String.valueOf(specialTokenId(s))).put("content", s).put("lstrip", false)
                    .put("normalized", false).put("rstrip", false).put("single_word", false).put("special", true);
        }
        cfg.set("bos_token", special.bos() == null ? cfg.nullNode() : cfg.textNode(special.bos()));
        cfg.set("eos_token", special.eos() == null ? cfg.nullNode() : cfg.textNode(special.eos()));
        cfg.set("pad_token", special.pad() == null ? cfg.nullNode() : cfg.textNode(special.pad()));
        cfg.putNull("unk_token");
        ArrayNode extra = cfg.putArray("additional_special_tokens");
        specialTokens.stream().filter(s -> !s.equals(special.bos()) && !s.equals(special.eos())
                && !s.equals(special.pad())).forEach(extra::add);
        cfg.put("chat_template", chatTemplate);
        cfg.put("clean_up_tokenization_spaces", false);
        cfg.put("model_max_length", 32768);
        cfg.put("split_special_tokens", false);
        cfg.put("tokenizer_class", "PreTrainedTokenizerFast");
        Files.writeString(dir.resolve("tokenizer_config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
    }
}
