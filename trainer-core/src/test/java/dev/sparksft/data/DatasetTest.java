package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LLaMA-Factory's converters and dataset_info.json semantics, and every bad-input path. */
class DatasetTest {
    static List<Conversation> load(Path dir, String... names) throws Exception {
        return LocalDatasets.load(List.of(names), dir, null);
    }

    static Message user(String s) {
        return new Message(Role.USER, s);
    }

    static Message assistant(String s) {
        return new Message(Role.ASSISTANT, s);
    }

    @Test
    void alpacaJoinsInstructionAndInputAndPrependsHistory(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("a.json"), """
                [{"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be exact.",
                  "history": [["Hi", "Hello"]]},
                 {"instruction": "Say hi", "input": "", "output": "hi"}]
                """);
        Files.writeString(dir.resolve(DatasetInfo.FILE), """
                {"math": {"file_name": "a.json", "columns": {"prompt": "instruction", "query": "input",
                  "response": "output", "system": "system", "history": "history"}}}
                """);
        List<Conversation> c = load(dir, "math");
        assertEquals(List.of(user("Hi"), assistant("Hello"), user("Add\n2 and 3")), c.get(0).prompt());
        assertEquals(List.of(assistant("5")), c.get(0).response());
        assertEquals("Be exact.", c.get(0).system());
        assertEquals(List.of(user("Say hi")), c.get(1).prompt());
        assertEquals(1, c.get(1).index());
        assertEquals("a.json [1]", c.get(1).source());
    }

    @Test
    void sharegptWithCustomTagsAndASystemTurn(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("chat.jsonl"), """
                {"msgs": [{"speaker": "sys", "text": "Stay calm."}, {"speaker": "me", "text": "Q1"}, {"speaker": "bot", "text": "A1"}, {"speaker": "me", "text": "Q2"}, {"speaker": "bot", "text": "A2"}]}
                """);
        Files.writeString(dir.resolve(DatasetInfo.FILE), """
                {"chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "msgs"},
                  "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot",
                           "system_tag": "sys"}}}
                """);
        Conversation c = load(dir, "chat").get(0);
        assertEquals("Stay calm.", c.system());
        assertEquals(List.of(user("Q1"), assistant("A1"), user("Q2")), c.prompt());
        assertEquals(List.of(assistant("A2")), c.response());
    }

    @Test
    void openaiMessagesByDirectPathWithToolResultsMerged(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("oa.jsonl"), """
                {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}
                {"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "call"}, {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"}, {"role": "assistant", "content": "done"}]}
                """);
        List<Conversation> c = load(dir, "oa.jsonl");
        // LLaMA-Factory's openai converter: "detailed thinking off" unless tools are given
        assertEquals("S\ndetailed thinking off", c.get(0).system());
        assertEquals("detailed thinking off", c.get(1).system());
        assertEquals(List.of(user("U")), c.get(0).prompt());
        assertEquals(new Message(Role.OBSERVATION, "r1\n</tool_response>\n<tool_response>\nr2"), c.get(1).prompt().get(2));
        assertEquals(List.of(assistant("done")), c.get(1).response());
    }

    @Test
    void wrongRoleOrderAndMissingResponseAreDroppedAndCounted(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("s.json"), """
                [{"conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
                 {"conversations": [{"from": "human", "value": "q"}]},
                 {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
                 {"instruction": "no output here"}]
                """);
        Files.writeString(dir.resolve("a.jsonl"), "{\"instruction\": \"i\", \"output\": \"o\"}\n{\"instruction\": \"i\"}\n");
        Files.writeString(dir.resolve(DatasetInfo.FILE), "{\"s\": {\"file_name\": \"s.json\", \"formatting\": \"sharegpt\"}}");
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        List<Conversation> c;
        System.setErr(new java.io.PrintStream(log, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            c = load(dir, "s");
        } finally {
            System.setErr(stderr);
        }
        String warning = log.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(warning.contains("Dropped 3 invalid example(s) of 4 in dataset 's'; first: s.json [0]: message 0 is "
                + "from assistant but should be from user: {\"conversations\":"), warning);
        assertEquals(1, warning.lines().filter(l -> l.contains("Dropped")).count(), "one warning line");
        assertEquals(1, c.size(), "only the well-formed conversation survives");
        assertEquals("q", c.get(0).prompt().get(0).content());
        assertEquals(0, c.get(0).index(), "indices count kept examples");
        assertEquals(1, load(dir, "a.jsonl").size(), "an alpaca row without output has no response");
    }

    @Test
    void malformedJsonlLineNamesFileAndLine(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("bad.jsonl"), "{\"instruction\": \"i\", \"output\": \"o\"}\n\n{\"instruction\": oops}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "bad.jsonl"));
        assertTrue(e.getMessage().contains("bad.jsonl line 3 is not valid JSON"), e.getMessage());
    }

    @Test
    void invalidUtf8IsNamedByLineAndByteOffsetAndOnlyItsLineIsSkipped(@TempDir Path dir) throws Exception {
        byte[] good = "{\"instruction\": \"i\", \"output\": \"o\"}\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] bad = {'{', '"', 'i', 'n', 's', 't', 'r', 'u', 'c', 't', 'i', 'o', 'n', '"', ':', '"', (byte) 0xff, '"', '}', '\n'};
        java.io.ByteArrayOutputStream file = new java.io.ByteArrayOutputStream();
        file.write(good);
        file.write(bad);
        file.write(good);
        Files.write(dir.resolve("u.jsonl"), file.toByteArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "u.jsonl"));
        assertTrue(e.getMessage().contains("dataset file " + dir.resolve("u.jsonl") + " is not UTF-8 text at line 2 "
                + "(byte offset " + (good.length + 16) + "); save it as UTF-8"), e.getMessage());
        assertEquals(2, LocalDatasets.load(List.of("u.jsonl"), new LocalDatasetSource(dir), "dataset", null, true).size(),
                "skip_bad_rows drops the one bad line and keeps the rest");

        Files.write(dir.resolve("a.json"), new byte[] {'[', '\n', '{', '"', 'x', '"', ':', '"', (byte) 0xc3, '"', '}', ']'});
        IllegalArgumentException array = assertThrows(IllegalArgumentException.class, () -> load(dir, "a.json"));
        assertTrue(array.getMessage().contains("a.json is not UTF-8 text at line 2 (byte offset 8)"), array.getMessage());
    }

    @Test
    void fileNamesOutsideDatasetDirAreRecognised() {
        assertTrue(DatasetInfo.isOutsideDatasetDir("../other/data.json"));
        assertTrue(DatasetInfo.isOutsideDatasetDir("/abs/data.json"));
        assertTrue(DatasetInfo.isOutsideDatasetDir("hdfs://nn/data.json"));
        assertTrue(!DatasetInfo.isOutsideDatasetDir("sub/../data.json"));
        assertTrue(!DatasetInfo.isOutsideDatasetDir("alpaca_en_demo.json"));
    }

    @Test
    void missingColumnNamesTheColumnAndTheFix(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("q.json"), "[{\"question\": \"q\", \"answer\": \"a\"}]");
        Files.writeString(dir.resolve(DatasetInfo.FILE), "{\"qa\": {\"file_name\": \"q.json\", \"columns\": {\"prompt\": \"question\", \"response\": \"output\"}}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "qa"));
        assertTrue(e.getMessage().contains("column 'output' (columns.response) is missing; the rows have [question, answer]"),
                e.getMessage());
    }

    @Test
    void wrongValueTypeNamesTheRow(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("n.jsonl"), "{\"instruction\": 42, \"output\": \"o\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "n.jsonl"));
        assertTrue(e.getMessage().contains("n.jsonl line 1: column 'instruction' holds number 42, expected a string"),
                e.getMessage());
    }

    @Test
    void emptyDatasetsAreErrors(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("empty.json"), "[]");
        Files.writeString(dir.resolve("none.jsonl"), "\n\n");
        Files.writeString(dir.resolve(DatasetInfo.FILE), "{\"e\": {\"file_name\": \"empty.json\"}, \"n\": {\"file_name\": \"none.jsonl\"}}");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(dir, "e")).getMessage().contains("is empty"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(dir, "n")).getMessage().contains("is empty"));
        Files.writeString(dir.resolve("allbad.jsonl"), "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "allbad.jsonl"));
        assertTrue(e.getMessage().contains("has no valid example: all 1 were dropped; first: allbad.jsonl line 1"), e.getMessage());
    }

    @Test
    void unknownDatasetNameSuggestsADefinedOne(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve(DatasetInfo.FILE), "{\"alpaca_en\": {\"file_name\": \"x.json\"}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, "alpaca_em"));
        assertTrue(e.getMessage().contains("did you mean 'alpaca_en'?"), e.getMessage());
    }

    @Test
    void hubDatasetsAndUnknownDatasetInfoKeysAreRefused(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve(DatasetInfo.FILE), """
                {"hub": {"hf_hub_url": "org/data"}, "typo": {"file_name": "x.json", "columns": {"promt": "q"}}}
                """);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(dir, "hub")).getMessage()
                .contains("uses hf_hub_url"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(dir, "typo")).getMessage()
                .contains("unknown columns key 'promt' (did you mean 'prompt'?)"));
    }

    @Test
    void maxSamplesKeepsTheFirstRows(@TempDir Path dir) throws Exception {
        SyntheticTasks.write(SyntheticTasks.Task.SORT, dir.resolve("s.jsonl"), 50, 6, 3);
        List<Conversation> c = LocalDatasets.load(List.of("s.jsonl"), dir, 7);
        assertEquals(7, c.size());
        String input = c.get(0).prompt().get(0).content().split("\n")[1];
        char[] sorted = input.toCharArray();
        java.util.Arrays.sort(sorted);
        assertEquals(new String(sorted), c.get(0).response().get(0).content());
    }
}
