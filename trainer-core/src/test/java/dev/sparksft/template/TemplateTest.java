package dev.sparksft.template;

import static dev.sparksft.template.TestTokenizers.BOS;
import static dev.sparksft.template.TestTokenizers.END_HEADER;
import static dev.sparksft.template.TestTokenizers.EOS;
import static dev.sparksft.template.TestTokenizers.EOT;
import static dev.sparksft.template.TestTokenizers.IM_END;
import static dev.sparksft.template.TestTokenizers.IM_START;
import static dev.sparksft.template.TestTokenizers.START_HEADER;
import static dev.sparksft.template.TestTokenizers.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.data.Conversation;
import dev.sparksft.data.Message;
import dev.sparksft.data.Role;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * For every built-in template, the exact ids and labels of a two-turn conversation with a system
 * prompt, written out by hand from LLaMA-Factory's template strings (data/template.py).
 */
class TemplateTest {
    static Tokenizer raw;

    @BeforeAll
    static void tokenizer(@TempDir Path dir) throws Exception {
        raw = TestTokenizers.bytes(dir);
    }

    @AfterAll
    static void close() {
        raw.close();
    }

    static final Conversation TWO_TURNS = new Conversation(0, "test", List.of(
            new Message(Role.USER, "Hi"), new Message(Role.ASSISTANT, "Hello!"), new Message(Role.USER, "2+2?")),
            List.of(new Message(Role.ASSISTANT, "4")), "Be brief.", "");

    static TokenizedExample encode(String template, Conversation c, boolean trainOnPrompt, boolean maskHistory,
                                   Boolean enableThinking, int cutoff) {
        ChatTemplate t = Templates.get(template);
        return new SupervisedEncoder(t, t.prepare(raw),
                new SupervisedEncoder.Options(cutoff, trainOnPrompt, maskHistory, enableThinking, false)).encode(c);
    }

    static TokenizedExample encode(String template, Conversation c) {
        return encode(template, c, false, false, true, 1024);
    }

    /** Asserts ids = s0 t0 s1 t1 and labels = mask(s0) t0 mask(s1) t1. */
    static void assertTurns(TokenizedExample ex, int[] s0, int[] t0, int[] s1, int[] t1) {
        assertArrayEquals(ChatTemplate.concat(s0, t0, s1, t1), ex.inputIds(), "input_ids");
        assertArrayEquals(ChatTemplate.concat(TestTokenizers.masked(s0.length), t0, TestTokenizers.masked(s1.length), t1),
                ex.labels(), "labels");
    }

    @Test
    void defaultTemplate() {
        assertTurns(encode("default", TWO_TURNS),
                ids("System: Be brief.", EOS, "\n", "Human: Hi", EOS, "\nAssistant:"), ids("Hello!", EOS, "\n"),
                ids("Human: 2+2?", EOS, "\nAssistant:"), ids("4", EOS, "\n"));
    }

    @Test
    void emptyTemplate() {
        assertTurns(encode("empty", TWO_TURNS), ids("Be brief.", "Hi"), ids("Hello!"), ids("2+2?"), ids("4"));
    }

    @Test
    void alpacaTemplate() {
        assertTurns(encode("alpaca", TWO_TURNS),
                ids("Be brief.", "### Instruction:\nHi\n\n### Response:\n"), ids("Hello!", EOS, "\n\n"),
                ids("### Instruction:\n2+2?\n\n### Response:\n"), ids("4", EOS, "\n\n"));
    }

    @Test
    void alpacaDefaultSystemWhenNoneGiven() {
        Conversation noSystem = new Conversation(0, "t", List.of(new Message(Role.USER, "Hi")),
                List.of(new Message(Role.ASSISTANT, "Yo")), "", "");
        TokenizedExample ex = encode("alpaca", noSystem);
        assertArrayEquals(ids("Below is an instruction that describes a task. Write a response that appropriately "
                + "completes the request.\n\n", "### Instruction:\nHi\n\n### Response:\n", "Yo", EOS, "\n\n"), ex.inputIds());
    }

    static int[][] chatmlTurns() {
        return new int[][] {
            ids(IM_START, "system\nBe brief.", IM_END, "\n", IM_START, "user\nHi", IM_END, "\n", IM_START, "assistant\n"),
            ids("Hello!", IM_END, "\n"),
            ids(IM_START, "user\n2+2?", IM_END, "\n", IM_START, "assistant\n"),
            ids("4", IM_END, "\n")};
    }

    @Test
    void chatmlQwenAndQwen3NothinkTemplates() {
        int[][] t = chatmlTurns();
        for (String name : List.of("chatml", "qwen", "qwen3_nothink")) {
            assertTurns(encode(name, TWO_TURNS), t[0], t[1], t[2], t[3]);
        }
    }

    @Test
    void qwenDefaultSystemAndEosReplacement() {
        Conversation noSystem = new Conversation(0, "t", List.of(new Message(Role.USER, "Hi")),
                List.of(new Message(Role.ASSISTANT, "Yo")), "", "");
        assertArrayEquals(ids(IM_START, "system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                IM_END, "\n", IM_START, "user\nHi", IM_END, "\n", IM_START, "assistant\n", "Yo", IM_END, "\n"),
                encode("qwen", noSystem).inputIds());
        ChatTemplate qwen = Templates.get("qwen");
        Tokenizer prepared = qwen.prepare(raw);
        assertEquals(IM_END, prepared.eosId(), "replace_eos makes <|im_end|> the eos");
        assertEquals(IM_END, prepared.padId(), "pad defaults to eos");
        assertEquals(List.of(IM_END), qwen.stopTokenIds(prepared));
    }

    @Test
    void qwen3AddsAnEmptyThoughtToEveryResponseWhenThinking() {
        int[][] t = chatmlTurns();
        int[] think = ids("<think>\n\n</think>\n\n");
        assertTurns(encode("qwen3", TWO_TURNS), t[0], ChatTemplate.concat(think, t[1]), t[2], ChatTemplate.concat(think, t[3]));
    }

    @Test
    void qwen3PutsTheEmptyThoughtIntoThePromptWithoutThinking() {
        int[][] t = chatmlTurns();
        int[] think = ids("<think>\n\n</think>\n\n");
        assertTurns(encode("qwen3", TWO_TURNS, false, false, false, 1024),
                ChatTemplate.concat(t[0], think), t[1], ChatTemplate.concat(t[2], think), t[3]);
    }

    @Test
    void qwen3KeepsAnExistingThought() {
        Conversation thought = new Conversation(0, "t", List.of(new Message(Role.USER, "Hi")),
                List.of(new Message(Role.ASSISTANT, "<think>\nhmm\n</think>\n\nYo")), "", "");
        TokenizedExample ex = encode("qwen3", thought);
        assertArrayEquals(ids(IM_START, "user\nHi", IM_END, "\n", IM_START, "assistant\n",
                "<think>\nhmm\n</think>\n\nYo", IM_END, "\n"), ex.inputIds());
        TokenizedExample stripped = encode("qwen3", thought, false, false, false, 1024);
        assertArrayEquals(ids(IM_START, "user\nHi", IM_END, "\n", IM_START, "assistant\n",
                "<think>\n\n</think>\n\n", "Yo", IM_END, "\n"), stripped.inputIds(), "enable_thinking=false strips thoughts");
    }

    /**
     * enable_thinking: null is Python's None in LLaMA-Factory: the empty thought closes the prompt
     * (not trained), as with false, but the thoughts of replies are kept (only `is False` strips them).
     */
    @Test
    void qwen3WithEnableThinkingNullMasksTheEmptyThoughtAndKeepsThoughts() {
        Conversation c = new Conversation(0, "t", List.of(new Message(Role.USER, "Hi"),
                new Message(Role.ASSISTANT, "<think>\nhmm\n</think>\n\nYo"), new Message(Role.USER, "2+2?")),
                List.of(new Message(Role.ASSISTANT, "4")), "", "");
        TokenizedExample ex = encode("qwen3", c, false, false, null, 1024);
        int[] s0 = ids(IM_START, "user\nHi", IM_END, "\n", IM_START, "assistant\n");
        int[] t0 = ids("<think>\nhmm\n</think>\n\nYo", IM_END, "\n");
        int[] s1 = ids(IM_START, "user\n2+2?", IM_END, "\n", IM_START, "assistant\n", "<think>\n\n</think>\n\n");
        int[] t1 = ids("4", IM_END, "\n");
        assertTurns(ex, s0, t0, s1, t1);
    }

    @Test
    void llama3Template() {
        assertTurns(encode("llama3", TWO_TURNS),
                ids(BOS, START_HEADER, "system", END_HEADER, "\n\nBe brief.", EOT,
                        START_HEADER, "user", END_HEADER, "\n\nHi", EOT, START_HEADER, "assistant", END_HEADER, "\n\n"),
                ids("Hello!", EOT),
                ids(START_HEADER, "user", END_HEADER, "\n\n2+2?", EOT, START_HEADER, "assistant", END_HEADER, "\n\n"),
                ids("4", EOT));
    }

    @Test
    void mistralFoldsTheSystemPromptIntoTheFirstUserTurn() {
        assertTurns(encode("mistral", TWO_TURNS),
                ids(BOS, "[INST] Be brief.\n\nHi[/INST]"), ids(" Hello!", EOS),
                ids("[INST] 2+2?[/INST]"), ids(" 4", EOS));
    }

    @Test
    void trainOnPromptKeepsPromptLabels() {
        TokenizedExample ex = encode("chatml", TWO_TURNS, true, false, true, 1024);
        assertArrayEquals(ex.inputIds(), ex.labels());
    }

    @Test
    void maskHistoryTrainsOnTheLastTurnOnly() {
        int[][] t = chatmlTurns();
        TokenizedExample ex = encode("chatml", TWO_TURNS, false, true, true, 1024);
        assertArrayEquals(ChatTemplate.concat(t[0], t[1], t[2], t[3]), ex.inputIds());
        assertArrayEquals(ChatTemplate.concat(TestTokenizers.masked(t[0].length + t[1].length),
                TestTokenizers.masked(t[2].length), t[3]), ex.labels());
    }

    @Test
    void maskHistoryKeepsTheLastTurnsUnderTheCutoff() {
        int[][] t = chatmlTurns();
        int cutoff = t[2].length + t[3].length; // room for the last turn only
        TokenizedExample ex = encode("chatml", TWO_TURNS, false, true, true, cutoff);
        assertArrayEquals(ChatTemplate.concat(t[2], t[3]), ex.inputIds());
    }

    @Test
    void cutoffTruncatesLaterTurnsWithInferSeqlen() {
        int[][] t = chatmlTurns();
        int firstTurn = t[0].length + t[1].length;
        int cutoff = firstTurn + 10; // 10 tokens left for turn 2: source 23, target 3
        TokenizedExample ex = encode("chatml", TWO_TURNS, false, false, true, cutoff);
        assertEquals(cutoff, ex.length());
        assertEquals(23, t[2].length);
        assertEquals(3, t[3].length);
        // infer_seqlen(23, 3, 10): target short -> kept whole, the source gets the other 7
        int[] source = java.util.Arrays.copyOf(t[2], 7);
        assertArrayEquals(ChatTemplate.concat(t[0], t[1], source, t[3]), ex.inputIds());
    }

    @Test
    void inferSeqlenCases() {
        assertArrayEquals(new int[] {10, 5}, SupervisedEncoder.inferSeqlen(10, 5, 20), "both fit");
        assertArrayEquals(new int[] {15, 5}, SupervisedEncoder.inferSeqlen(30, 5, 20), "short target kept, source cut");
        assertArrayEquals(new int[] {5, 15}, SupervisedEncoder.inferSeqlen(5, 30, 20), "short source kept, target cut");
        assertArrayEquals(new int[] {10, 10}, SupervisedEncoder.inferSeqlen(30, 30, 20), "both cut in proportion");
        assertArrayEquals(new int[] {15, 5}, SupervisedEncoder.inferSeqlen(30, 10, 20), "target exactly half: proportional");
        assertArrayEquals(new int[] {5, 5}, SupervisedEncoder.inferSeqlen(5, 5, 10), "both exactly half: proportional");
        assertArrayEquals(new int[] {6, 5}, SupervisedEncoder.inferSeqlen(7, 7, 11), "int() floors the target share");
        assertArrayEquals(new int[] {1, 0}, SupervisedEncoder.inferSeqlen(3, 7, 1), "cutoff 1 keeps a source token");
        assertArrayEquals(new int[] {0, 0}, SupervisedEncoder.inferSeqlen(0, 0, 5), "empty pair");
    }

    @Test
    void unknownTemplateSuggestsTheNearest() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Templates.get("qwen4"));
        assertTrue(e.getMessage().contains("did you mean 'qwen"), e.getMessage());
        assertTrue(e.getMessage().contains("llama3"), e.getMessage());
    }
}
