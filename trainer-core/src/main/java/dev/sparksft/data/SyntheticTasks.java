package dev.sparksft.data;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Instruction datasets the project generates itself, small enough for a tiny model to learn from
 * scratch on a CPU: reverse a short string, or sort its letters. Strings are 3..maxLen distinct
 * lowercase letters (no repeats, so answers need no counting). Rows are alpaca JSONL.
 */
public final class SyntheticTasks {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String LETTERS = "abcdefghijklmnopqrstuvwxyz";

    public enum Task {
        REVERSE("Reverse the string."),
        SORT("Sort the letters.");

        final String instruction;

        Task(String instruction) {
            this.instruction = instruction;
        }
    }

    private SyntheticTasks() {}

    /** Writes {@code numExamples} rows of {@code task} on random strings of 3..maxLen letters. */
    public static void write(Task task, Path file, int numExamples, int maxLen, long seed) throws IOException {
        if (numExamples < 1 || maxLen < 3 || maxLen > LETTERS.length()) {
            throw new UserError("need at least 1 example and strings of 3.." + LETTERS.length()
                    + " letters, got --num " + numExamples + " --max-len " + maxLen);
        }
        Random rng = new Random(seed);
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int i = 0; i < numExamples; i++) {
                char[] pool = LETTERS.toCharArray();
                char[] s = new char[3 + rng.nextInt(maxLen - 2)];
                for (int j = 0; j < s.length; j++) { // a partial Fisher-Yates draw: distinct letters
                    int k = j + rng.nextInt(pool.length - j);
                    char t = pool[j];
                    pool[j] = pool[k];
                    pool[k] = t;
                    s[j] = pool[j];
                }
                String input = new String(s);
                ObjectNode row = JSON.createObjectNode();
                row.put("instruction", task.instruction);
                row.put("input", input);
                row.put("output", answer(task, input));
                w.write(JSON.writeValueAsString(row));
                w.write('\n');
            }
        }
    }

    static String answer(Task task, String input) {
        char[] c = input.toCharArray();
        if (task == Task.SORT) {
            Arrays.sort(c);
            return new String(c);
        }
        return new StringBuilder(input).reverse().toString();
    }
}
