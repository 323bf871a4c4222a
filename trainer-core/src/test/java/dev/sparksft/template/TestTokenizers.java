package dev.sparksft.template;

import dev.sparksft.tokenizer.ByteLevelBpe;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A byte-level tokenizer without merges, made in the test: every byte of text is its own id
 * (id == byte value), so expected ids can be written out by hand from template strings.
 */
public final class TestTokenizers {
    public static final List<String> SPECIALS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
            "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>", "<|/tool|>");
    public static final int ENDOFTEXT = 256;
    public static final int IM_START = 257;
    public static final int IM_END = 258;
    public static final int BOS = 259;
    public static final int EOS = 260;
    public static final int START_HEADER = 261;
    public static final int END_HEADER = 262;
    public static final int EOT = 263;

    private TestTokenizers() {}

    /** bos {@code <s>}, eos {@code </s>}, no pad. */
    public static Tokenizer bytes(Path dir) throws IOException {
        ByteLevelBpe.train("", 0, SPECIALS).write(dir, new Tokenizer.SpecialTokens("<s>", "</s>", null), "");
        return Tokenizer.load(dir);
    }

    /** Ids written by hand: an Integer is a token id, a String is its UTF-8 bytes. */
    public static int[] ids(Object... parts) {
        java.util.ArrayList<Integer> out = new java.util.ArrayList<>();
        for (Object p : parts) {
            if (p instanceof Integer i) {
                out.add(i);
            } else {
                for (byte b : ((String) p).getBytes(StandardCharsets.UTF_8)) {
                    out.add(b & 0xFF);
                }
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    public static int[] masked(int n) {
        int[] a = new int[n];
        java.util.Arrays.fill(a, -100);
        return a;
    }
}
