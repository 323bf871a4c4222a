package dev.sparksft.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.Message;
import dev.sparksft.data.Role;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.tokenizer.ByteLevelBpe;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every LLaMA-Factory template against LLaMA-Factory itself: the fixture holds what its own code
 * (template.py and the supervised/unsupervised processors, run by
 * src/test/python/make_template_fixtures.py) produced for conversations of its demo data, with a
 * byte-level tokenizer whose special tokens the fixture lists. Text templates must give the same
 * input ids, labels, generation prompt and label, eos, pad and stop ids, and the same refusal;
 * qwen2_vl is built in with its image plugin (MultimodalEncodingTest checks it), the other
 * templates must be refused as multimodal, naming their plugin.
 */
class LlamaFactoryTemplatesTest {
    static JsonNode fixture;
    static Path dir;
    static final Map<String, Tokenizer> TOKENIZERS = new HashMap<>();

    @BeforeAll
    static void load(@TempDir Path tmp) throws Exception {
        dir = tmp;
        try (InputStream in = LlamaFactoryTemplatesTest.class.getResourceAsStream(
                "/templates/llamafactory_templates.json")) {
            fixture = new ObjectMapper().readTree(in);
        }
    }

    @AfterAll
    static void close() {
        TOKENIZERS.values().forEach(Tokenizer::close);
    }

    /** The case's tokenizer: specials are ids 256, 257, ... in order, every other byte its own id. */
    static Tokenizer tokenizer(List<String> specials, String bos) throws Exception {
        String key = specials + " bos=" + bos;
        Tokenizer t = TOKENIZERS.get(key);
        if (t == null) {
            Path d = Files.createDirectory(dir.resolve("tok" + TOKENIZERS.size()));
            ByteLevelBpe.train("", 0, specials).write(d, new Tokenizer.SpecialTokens(bos, "</s>", null), "");
            t = Tokenizer.load(d);
            TOKENIZERS.put(key, t);
        }
        return t;
    }

    /** Expands the fixture's compact ids: a string is its UTF-8 bytes, {"ignore": n} is n times -100. */
    static int[] ids(JsonNode compact) {
        List<Integer> out = new ArrayList<>();
        for (JsonNode part : compact) {
            if (part.isTextual()) {
                for (byte b : part.asText().getBytes(StandardCharsets.UTF_8)) {
                    out.add(b & 0xFF);
                }
            } else if (part.isInt()) {
                out.add(part.asInt());
            } else {
                for (int i = 0; i < part.get("ignore").asInt(); i++) {
                    out.add(-100);
                }
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    static List<Message> messages(JsonNode list) {
        List<Message> out = new ArrayList<>();
        for (JsonNode m : list) {
            out.add(new Message(Role.valueOf(m.get("role").asText().toUpperCase()), m.get("content").asText()));
        }
        return out;
    }

    static List<String> strings(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.forEach(n -> out.add(n.asText()));
        return out;
    }

    static Iterable<Map.Entry<String, JsonNode>> templates() {
        return () -> fixture.get("templates").fields();
    }

    @TestFactory
    Stream<DynamicTest> everyTextTemplateEncodesAsLlamaFactoryDoes() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : templates()) {
            String name = e.getKey();
            JsonNode t = e.getValue();
            if (!t.has("cases")) {
                continue;
            }
            tests.add(DynamicTest.dynamicTest(name + ": registration", () -> assertRegistration(name, t)));
            int i = 0;
            for (JsonNode c : t.get("cases")) {
                ObjectNode options = c.deepCopy();
                options.remove(List.of("input_ids", "labels", "generation_prompt", "generation_label", "error"));
                String label = name + " case " + i++ + " " + options;
                tests.add(DynamicTest.dynamicTest(label, () -> assertCase(name, t, c, label)));
            }
        }
        return tests.stream();
    }

    static void assertRegistration(String name, JsonNode t) throws Exception {
        ChatTemplate tpl = Templates.get(name);
        String cls = t.get("class").asText();
        assertEquals(t.get("efficient_eos").asBoolean(), tpl.efficientEos(), "efficient_eos");
        assertEquals(t.get("replace_eos").asBoolean(), tpl.replaceEos(), "replace_eos");
        assertEquals(strings(t.get("stop_words")), tpl.stopWords(), "stop_words");
        assertEquals(t.get("default_system").asText(), tpl.defaultSystem(), "default_system");
        assertEquals(cls.equals("Llama2Template"), tpl.foldSystem(), "Llama2Template folds the system text");
        assertEquals(cls.endsWith("ReasoningTemplate"), tpl.reasoning(), "ReasoningTemplate");
        assertEquals(strings(t.get("thought_words")), List.of(tpl.thoughtOpen(), tpl.thoughtClose()), "thought_words");
        assertEquals(t.get("tool_format").isNull() ? null : t.get("tool_format").asText(),
                tpl.toolCalling().toolsFormatName(), "format_tools' tool_format");
        assertEquals(t.get("function_tool_format").asText(), tpl.toolCalling().format().key,
                "format_function's tool_format");
        JsonNode tok = t.get("tokenizer");
        Tokenizer prepared = tpl.prepare(tokenizer(strings(tok.get("specials")), "<s>"));
        assertEquals(tok.get("eos_id").asInt(), prepared.eosId(), name + ": eos after fix_special_tokens");
        assertEquals(tok.get("pad_id").asInt(), prepared.padId(), "pad after fix_special_tokens");
        Set<Integer> stops = new TreeSet<>(tpl.stopTokenIds(prepared));
        Set<Integer> want = new TreeSet<>();
        tok.get("stop_ids").forEach(n -> want.add(n.asInt()));
        assertEquals(want, stops, "get_stop_token_ids");
    }

    static void assertCase(String name, JsonNode t, JsonNode c, String label) throws Exception {
        String conv = c.get("conversation").asText();
        JsonNode conversation = conv.equals("thoughts") ? t.get("thoughts") : fixture.get("conversations").get(conv);
        Conversation example = new Conversation(0, "fixture", messages(conversation.get("prompt")),
                messages(conversation.get("response")), conversation.get("system").asText(), "");
        String bos = c.has("bos") && c.get("bos").isNull() ? null : "<s>";
        ChatTemplate tpl = Templates.get(name);
        Tokenizer tok = tpl.prepare(tokenizer(strings(t.get("tokenizer").get("specials")), bos));
        SupervisedEncoder.Options options = new SupervisedEncoder.Options(
                c.path("cutoff_len").asInt(1024), c.path("train_on_prompt").asBoolean(false),
                c.path("mask_history").asBoolean(false), c.path("enable_thinking").asBoolean(true),
                c.path("preserve_thinking").asBoolean(false));
        if (c.has("error")) {
            UserError e = assertThrows(UserError.class, () -> new SupervisedEncoder(tpl, tok, options));
            assertTrue(c.get("error").asText().contains("train_on_prompt") && e.getMessage().contains("train_on_prompt"),
                    e.getMessage());
            return;
        }
        SupervisedEncoder encoder = new SupervisedEncoder(tpl, tok, options);
        TokenizedExample ex = encoder.encode(example);
        assertArrayEquals(ids(c.get("input_ids")), ex.inputIds(), label + " " + "input_ids");
        assertArrayEquals(ids(c.get("labels")), ex.labels(), label + " " + "labels");
        if (c.has("generation_prompt")) {
            ChatTemplate.Turn gen = encoder.encodeForGeneration(example);
            assertArrayEquals(ids(c.get("generation_prompt")), gen.source(), label + " " + "generation prompt");
            assertArrayEquals(ids(c.get("generation_label")), gen.target(), label + " " + "generation label");
        }
    }

    @Test
    void everyLlamaFactoryTemplateIsBuiltInOrRefusedAsMultimodal() {
        List<String> missing = new ArrayList<>();
        Set<String> lf = new TreeSet<>();
        for (Map.Entry<String, JsonNode> e : templates()) {
            String name = e.getKey();
            lf.add(name);
            if (e.getValue().has("cases")) {
                if (!Templates.names().contains(name)) {
                    missing.add(name);
                }
            } else if (name.equals("qwen2_vl")) {
                assertEquals("qwen2_vl", e.getValue().get("mm_plugin").asText());
                ChatTemplate t = Templates.get(name);
                assertEquals(MmPlugin.QWEN2_VL, t.mmPlugin());
                assertEquals(e.getValue().get("default_system").asText(), t.defaultSystem());
                assertEquals(e.getValue().get("replace_eos").asBoolean(), t.replaceEos());
                assertEquals(e.getValue().get("efficient_eos").asBoolean(), t.efficientEos());
                List<String> stops = new ArrayList<>();
                e.getValue().get("stop_words").forEach(w -> stops.add(w.asText()));
                assertEquals(stops, t.stopWords());
            } else {
                String plugin = e.getValue().get("mm_plugin").asText();
                assertFalse(plugin.equals("base"), name);
                UserError err = assertThrows(UserError.class, () -> Templates.get(name));
                assertTrue(err.getMessage().contains("'" + name + "' is LLaMA-Factory's template for a multimodal")
                        && err.getMessage().contains("with its '" + plugin + "' plugin, which spark-sft does not support "
                        + "yet"), err.getMessage());
            }
        }
        assertEquals(List.of(), missing, "LLaMA-Factory text templates that are not built in");
        for (String name : Templates.names()) {
            assertTrue(lf.contains(name), name + " is not one of LLaMA-Factory's templates");
        }
    }

    @Test
    void theTemplatesWithAPluginThatAreBuiltInAreExactlyTheTextOnes() {
        Set<String> withPlugin = new TreeSet<>();
        for (Map.Entry<String, JsonNode> e : templates()) {
            if (!e.getValue().get("mm_plugin").asText().equals("base") && e.getValue().has("cases")) {
                withPlugin.add(e.getKey());
            }
        }
        assertEquals(Set.of("gemma3", "llama4", "mistral_small", "qwen3_5", "qwen3_5_nothink", "qwen3_6"), withPlugin);
    }

    @Test
    void aMultimodalTemplateInAConfigurationIsNamedAsSuch() {
        String problem = Templates.problem("qwen3_vl").orElseThrow();
        assertEquals("template: 'qwen3_vl' is LLaMA-Factory's template for a multimodal (image, video or audio) "
                + "model with its 'qwen3_vl' plugin, which spark-sft does not support yet: images train with template: "
                + "qwen2_vl (Qwen2-VL, Qwen2.5-VL); for text use a text model and its template", problem);
        assertTrue(Templates.problem("qwen2_vl").isEmpty());
        assertTrue(Templates.problem("moss_vl").orElseThrow().contains("'moss_vl' plugin"));
        assertTrue(Templates.problem("qwen3").isEmpty());
        assertTrue(Templates.problem("qwen9").orElseThrow().startsWith("template: unknown template 'qwen9'"));
    }
}
