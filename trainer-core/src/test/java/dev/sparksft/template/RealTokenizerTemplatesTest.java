package dev.sparksft.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.cli.TokenizeCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.data.TokenizedFiles;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Templates with real tokenizers against LLaMA-Factory: {@code sft tokenize} over a few rows of
 * LLaMA-Factory's demo datasets (and multi-turn, system and placeholder conversations) must give
 * the input ids and labels that LLaMA-Factory's own template, converter and processor code gave
 * with the same tokenizer.json, each string encoded by an independent encoder (@lenml/tokenizers,
 * src/test/python/check_template_tokenizers.py {@code fixture}). The tokenizers are the models'
 * own, trimmed to their first 3,000 vocabulary ids with every added token kept, so special-token
 * splitting, sentencepiece's prefix space per encoded string, bos and the eos that
 * fix_special_tokens sets are the real ones.
 */
class RealTokenizerTemplatesTest {
    private static final Path FIXTURE = resource("/templates/real-tokenizers");

    /**
     * Pairs where spark-sft is known to differ, and why. LLaMA-Factory's fix_special_tokens hands
     * the replaced eos and the stop words to transformers' add_special_tokens; a token that is in
     * the model vocabulary but not an added token of tokenizer.json keeps its id and becomes a
     * special added token, which the tokenizer then matches whole in any text. spark-sft leaves
     * tokenizer.json as it is, so the token written in the template text is split by the model
     * into pieces. Each entry must still differ in exactly that way; once the tokenizer makes
     * such tokens special, its entry goes.
     */
    private static final Map<String, String> KNOWN_DIFFERENCES = Map.of(
            "yi|yi", "<|im_end|>",          // stop word, a vocabulary piece of Yi
            "gemma|gemma", "<end_of_turn>"); // replaced eos, a vocabulary piece of Gemma 1

    static JsonNode expected;
    @TempDir
    static Path tmp;

    @BeforeAll
    static void load() throws Exception {
        expected = new ObjectMapper().readTree(FIXTURE.resolve("expected.json").toFile());
    }

    @TestFactory
    Stream<DynamicTest> sftTokenizeGivesLlamaFactorysIds() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode run : expected.get("runs")) {
            String pair = run.get("template").asText() + "|" + run.get("tokenizer").asText();
            String label = pair + " " + run.get("variant").asText();
            tests.add(DynamicTest.dynamicTest(label, () -> {
                List<TokenizedExample> actual = tokenize(run, Files.createTempDirectory(tmp, "run"));
                if (KNOWN_DIFFERENCES.containsKey(pair)) {
                    assertKnownDifference(run, actual, KNOWN_DIFFERENCES.get(pair), label);
                } else {
                    assertSame(run, actual, label);
                }
            }));
        }
        return tests.stream();
    }

    /** What {@code sft tokenize} writes for the run's template, tokenizer and data arguments. */
    static List<TokenizedExample> tokenize(JsonNode run, Path dir) throws Exception {
        String template = run.get("template").asText();
        JsonNode variant = expected.get("variants").get(run.get("variant").asText());
        String yaml = "model_name_or_path: " + FIXTURE.resolve(run.get("tokenizer").asText()) + "\n"
                + "stage: sft\ndo_train: true\n"
                + "dataset: alpaca_en_demo,alpaca_zh_demo,identity,glaive_toolcall_en_demo,extra_" + template + "\n"
                + "dataset_dir: " + FIXTURE.resolve("data") + "\n"
                + "template: " + template + "\n"
                + "cutoff_len: " + variant.get("cutoff_len").asInt() + "\n"
                + "mask_history: " + variant.get("mask_history").asBoolean() + "\n"
                + "max_samples: " + expected.get("max_samples").asInt() + "\n"
                + "tokenized_path: " + dir.resolve("tokenized") + "\noutput_dir: " + dir.resolve("output") + "\n";
        Path config = Files.writeString(dir.resolve("tokenize.yaml"), yaml);
        TokenizeCommand.run(SftConfig.load(config, List.of()));
        return TokenizedFiles.read(dir.resolve("tokenized").resolve("train.jsonl"));
    }

    static void assertSame(JsonNode run, List<TokenizedExample> actual, String label) {
        JsonNode examples = run.get("examples");
        assertEquals(examples.size(), actual.size(), label + ": number of examples");
        for (int row = 0; row < examples.size(); row++) {
            int[] ids = ints(examples.get(row).get("input_ids"));
            assertIds(ids, actual.get(row).inputIds(), label + " row " + row + " input_ids");
            assertIds(labels(ids, examples.get(row).get("labels")), actual.get(row).labels(),
                    label + " row " + row + " labels");
        }
    }

    /**
     * The pair still differs; without a cutoff, in some row first where LLaMA-Factory has
     * {@code token}'s id (spark-sft's tokenizer wrote the token's text in other pieces). Under a
     * short cutoff the longer pieces move where the turns are cut, so a row may differ first
     * elsewhere.
     */
    static void assertKnownDifference(JsonNode run, List<TokenizedExample> actual, String token, String label)
            throws Exception {
        int id;
        try (Tokenizer tok = Tokenizer.load(FIXTURE.resolve(run.get("tokenizer").asText()))) {
            id = tok.tokenId(token).orElseThrow();
        }
        JsonNode examples = run.get("examples");
        assertEquals(examples.size(), actual.size(), label + ": number of examples");
        boolean exact = true;
        boolean cut = expected.get("variants").get(run.get("variant").asText()).get("cutoff_len").asInt() < 1024;
        for (int row = 0; row < examples.size(); row++) {
            int[] want = ints(examples.get(row).get("input_ids"));
            int at = Arrays.mismatch(want, actual.get(row).inputIds());
            if (at >= 0 && (cut || at < want.length && want[at] == id)) {
                return;
            }
            exact &= at < 0;
        }
        fail(label + (exact ? " is now exact: remove it from KNOWN_DIFFERENCES"
                : " differs, but in no row first at LLaMA-Factory's special " + token + " (" + id + ")"));
    }

    static void assertIds(int[] want, int[] got, String what) {
        int at = Arrays.mismatch(want, got);
        if (at >= 0) {
            fail(what + " differ from LLaMA-Factory's at " + at + ": " + around(want, got, at));
        }
    }

    static String around(int[] want, int[] got, int at) {
        int from = Math.max(0, at - 3);
        return "LLaMA-Factory " + Arrays.toString(Arrays.copyOfRange(want, from, Math.min(want.length, at + 4)))
                + ", spark-sft " + Arrays.toString(Arrays.copyOfRange(got, from, Math.min(got.length, at + 4)))
                + " (from position " + from + ")";
    }

    static int[] ints(JsonNode list) {
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = list.get(i).asInt();
        }
        return out;
    }

    /** The fixture's label runs: {"ignore": n} is n times -100, {"same": n} n input ids, an integer itself. */
    static int[] labels(int[] inputIds, JsonNode runs) {
        int[] out = new int[inputIds.length];
        int at = 0;
        for (JsonNode r : runs) {
            if (r.isInt()) {
                out[at++] = r.asInt();
            } else if (r.has("ignore")) {
                for (int i = r.get("ignore").asInt(); i > 0; i--) {
                    out[at++] = TokenizedExample.IGNORE_INDEX;
                }
            } else {
                for (int i = r.get("same").asInt(); i > 0; i--, at++) {
                    out[at] = inputIds[at];
                }
            }
        }
        assertEquals(inputIds.length, at, "the fixture's labels cover its input ids");
        return out;
    }

    private static Path resource(String name) {
        try {
            return Path.of(RealTokenizerTemplatesTest.class.getResource(name).toURI());
        } catch (Exception e) {
            throw new IllegalStateException("test resource " + name + " is missing", e);
        }
    }
}
