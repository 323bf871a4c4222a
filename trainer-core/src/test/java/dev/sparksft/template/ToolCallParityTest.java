package dev.sparksft.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.LocalDatasets;
import dev.sparksft.data.Message;
import dev.sparksft.data.Role;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's glaive_toolcall demo sets (tools column, function_call and observation turns),
 * and some of their rows in openai form (tool_calls, tool results, a list of tools), loaded
 * through dataset_info.json and tokenized by every template, with and without the
 * tool_format key, against {@code src/test/python/make_tool_fixtures.py}: a re-creation of
 * LLaMA-Factory's converter, tool formats, formatters, templates and processors from its Python
 * source, with the byte-level test tokenizer. Every tool description and function call text of
 * the 13 tool formats, and every example's input_ids and labels (training) and prompt and label
 * (generation), are compared by hash; a few are written out in full.
 * {@code -Dtools.fixtures=DIR} runs it on fixtures made with {@code --all-rows --out DIR}.
 */
class ToolCallParityTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> DATASETS = List.of("glaive_toolcall_en_demo", "glaive_toolcall_zh_demo",
            "openai_tools_demo");
    static Path fixtures;
    static JsonNode expected;
    static LocalDate today;
    static Map<String, List<Conversation>> conversations = new LinkedHashMap<>();
    static Tokenizer raw;

    @BeforeAll
    static void load(@TempDir Path tmp) throws Exception {
        String dir = System.getProperty("tools.fixtures");
        fixtures = dir != null ? Path.of(dir)
                : Path.of(ToolCallParityTest.class.getResource("/tools/expected.json").toURI()).getParent();
        expected = JSON.readTree(fixtures.resolve("expected.json").toFile());
        today = LocalDate.parse(expected.get("today").asText(),
                java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy", java.util.Locale.ENGLISH));
        for (String name : DATASETS) {
            conversations.put(name, LocalDatasets.load(List.of(name), fixtures, null));
        }
        raw = TestTokenizers.bytes(tmp);
    }

    @AfterAll
    static void close() {
        raw.close();
    }

    static String sha(String text) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(d).substring(0, 16);
    }

    static String idsHash(int[] ids, int[] labels) throws Exception {
        return sha(Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(",")) + ";"
                + Arrays.stream(labels).mapToObj(Integer::toString).collect(Collectors.joining(",")));
    }

    static String functionText(ToolFormat format, String content) {
        ToolCalling plain = new ToolCalling(Formatter.of("{{content}}"), format, null, "<tool_call>", "</tool_call>", false, today);
        List<Slot> slots = plain.functionSlots(content, true, "<think>\n", "\n</think>\n\n");
        return ((Slot.Text) slots.get(0)).text();
    }

    /** The template of a case, tool_format applied as SupervisedEncoder.of does, llama3's date fixed. */
    static ChatTemplate template(JsonNode c) {
        ChatTemplate t = Templates.get(c.get("template").asText());
        ToolCalling calling = c.get("tool_format").isNull() ? t.toolCalling()
                : t.toolCalling().withFormat(ToolFormat.of(c.get("tool_format").asText()));
        return t.withToolCalling(calling.withToday(today));
    }

    static SupervisedEncoder encoder(ChatTemplate t) {
        return new SupervisedEncoder(t, t.prepare(raw),
                new SupervisedEncoder.Options(expected.get("cutoff_len").asInt(), false, false, true, false));
    }

    @Test
    void everySetLoadsWithToolsAndToolRoles() {
        for (String name : DATASETS) {
            List<Conversation> c = conversations.get(name);
            assertEquals(expected.get("datasets").get(name).get("num_rows").asInt(), c.size(), name);
            assertEquals(true, c.stream().anyMatch(x -> !x.tools().isEmpty()), name + " has tools");
            List<Role> roles = c.stream().flatMap(x -> x.messages().stream()).map(Message::role).distinct().toList();
            assertEquals(true, roles.containsAll(List.of(Role.USER, Role.ASSISTANT, Role.FUNCTION, Role.OBSERVATION)),
                    name + ": " + roles);
        }
    }

    @Test
    void toolDescriptionsOfEveryFormat() throws Exception {
        JsonNode all = expected.get("tool_text");
        for (ToolFormat format : ToolFormat.values()) {
            JsonNode e = all.get(format.key);
            for (String name : DATASETS) {
                List<Conversation> c = conversations.get(name);
                for (int i = 0; i < c.size(); i++) {
                    String tools = c.get(i).tools();
                    String got = tools.isEmpty() ? null : sha(format.describeTools(tools, today));
                    assertEquals(e.get(name).get(i).asText(null), got, format.key + " " + name + " row " + i);
                }
            }
            String firstEn = conversations.get(DATASETS.get(0)).stream().filter(x -> !x.tools().isEmpty()).findFirst()
                    .orElseThrow().tools();
            String firstZh = conversations.get(DATASETS.get(1)).stream().filter(x -> !x.tools().isEmpty()).findFirst()
                    .orElseThrow().tools();
            assertEquals(e.get("full").get(0).asText(), format.describeTools(firstEn, today), format.key + " en");
            assertEquals(e.get("full").get(1).asText(), format.describeTools(firstZh, today), format.key + " zh");
            JsonNode extraTools = expected.get("extra_tools");
            for (int i = 0; i < extraTools.size(); i++) {
                String tools = extraTools.get(i).asText();
                assertEquals(e.get("extra").get(i).asText(), format.describeTools(tools, today), format.key + " extra " + i);
            }
        }
    }

    @Test
    void functionCallTextsOfEveryFormat() throws Exception {
        JsonNode all = expected.get("function_text");
        for (ToolFormat format : ToolFormat.values()) {
            JsonNode e = all.get(format.key);
            for (String name : DATASETS) {
                List<Conversation> c = conversations.get(name);
                for (int i = 0; i < c.size(); i++) {
                    List<String> got = new ArrayList<>();
                    for (Message m : c.get(i).messages()) {
                        if (m.role() == Role.FUNCTION) {
                            String text;
                            try {
                                text = sha(functionText(format, m.content()));
                            } catch (UserError refused) {   // where LLaMA-Factory raises: glm4 and parallel calls
                                text = null;
                            }
                            got.add(text);
                        }
                    }
                    List<String> want = new ArrayList<>();
                    e.get(name).get(i).forEach(h -> want.add(h.asText(null)));
                    assertEquals(want, got, format.key + " " + name + " row " + i);
                }
            }
            JsonNode calls = expected.get("extra_calls");
            for (int i = 0; i < calls.size(); i++) {
                String content = calls.get(i).asText();
                JsonNode want = e.get("extra").get(i);
                String what = format.key + " extra call " + i;
                if (want.isNull()) {   // LLaMA-Factory raises (glm4's parallel calls, a string of arguments)
                    assertThrows(UserError.class, () -> functionText(format, content), what);
                } else {
                    assertEquals(want.asText(), functionText(format, content), what);
                }
            }
        }
    }

    @Test
    void trainingIdsAndLabelsOfEveryTemplate() throws Exception {
        for (JsonNode c : expected.get("supervised")) {
            SupervisedEncoder encoder = encoder(template(c));
            List<Conversation> rows = conversations.get(c.get("dataset").asText());
            for (int i = 0; i < rows.size(); i++) {
                Conversation row = rows.get(i);
                if (c.get("hashes").get(i).isNull()) {   // LLaMA-Factory raises (glm4 and parallel calls)
                    assertThrows(UserError.class, () -> encoder.encode(row), c + " row " + i);
                    continue;
                }
                TokenizedExample ex = encoder.encode(row);
                assertEquals(c.get("hashes").get(i).asText(), idsHash(ex.inputIds(), ex.labels()),
                        c.get("template") + " tool_format " + c.get("tool_format") + " " + c.get("dataset") + " row " + i
                                + ": " + encoder.tokenizer().decode(ex.inputIds(), false));
            }
        }
    }

    @Test
    void generationPromptsOfEveryTemplate() throws Exception {
        for (JsonNode c : expected.get("generation")) {
            SupervisedEncoder encoder = encoder(template(c));
            List<Conversation> rows = conversations.get(c.get("dataset").asText());
            for (int i = 0; i < rows.size(); i++) {
                Conversation row = rows.get(i);
                if (c.get("hashes").get(i).isNull()) {
                    assertThrows(UserError.class, () -> encoder.encodeForGeneration(row), c + " row " + i);
                    continue;
                }
                ChatTemplate.Turn t = encoder.encodeForGeneration(row);
                assertEquals(c.get("hashes").get(i).asText(), idsHash(t.source(), t.target()),
                        c.get("template") + " tool_format " + c.get("tool_format") + " " + c.get("dataset") + " row " + i);
            }
        }
    }

    @Test
    void examplesWrittenOutInFull() {
        for (JsonNode e : expected.get("examples")) {
            ChatTemplate t = Templates.get(e.get("template").asText());
            t = t.withToolCalling(t.toolCalling().withToday(today));
            SupervisedEncoder encoder = encoder(t);
            Conversation c = conversations.get(e.get("dataset").asText()).get(e.get("row").asInt());
            List<ChatTemplate.Turn> turns = t.encodeMultiturn(encoder.tokenizer(), c.messages(), c.system(), c.tools(),
                    true, false);
            String what = e.get("template") + " " + e.get("dataset") + " row " + e.get("row");
            assertEquals(e.get("turns").size(), turns.size(), what);
            for (int i = 0; i < turns.size(); i++) {
                assertEquals(e.get("turns").get(i).get("source").asText(),
                        encoder.tokenizer().decode(turns.get(i).source(), false), what + " turn " + i + " prompt");
                assertEquals(e.get("turns").get(i).get("target").asText(),
                        encoder.tokenizer().decode(turns.get(i).target(), false), what + " turn " + i + " response");
            }
            TokenizedExample ex = encoder.encode(c);
            assertArrayEquals(ints(e.get("input_ids")), ex.inputIds(), what + " input_ids");
            assertArrayEquals(ints(e.get("labels")), ex.labels(), what + " labels");
        }
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }
}
