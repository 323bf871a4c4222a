package dev.sparksft.data;

import static dev.sparksft.data.TokenizedExample.IGNORE_INDEX;

import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * Pads examples into a {@link Batch}: right padding for training (length rounded up to a
 * multiple, labels padded with -100; packed sequences get restarting position ids) and left padding for generation (so every row's next
 * token is at the same column; position ids start at each row's first real token).
 */
public final class Collator {
    /** Training batches are padded to a multiple of 8 tokens, as LLaMA-Factory's collator does. */
    public static final int PAD_TO_MULTIPLE_OF = 8;

    private Collator() {}

    /** Training: right padding to the longest row rounded up to {@code padToMultipleOf}. */
    public static Batch rightPadded(List<TokenizedExample> examples, int padId, int padToMultipleOf) {
        int longest = examples.stream().mapToInt(TokenizedExample::length).max().orElse(0);
        int seq = Math.max(1, (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf);
        int n = examples.size();
        long[] ids = new long[n * seq];
        long[] mask = new long[n * seq];
        long[] pos = new long[n * seq];
        long[] labels = new long[n * seq];
        for (int b = 0; b < n; b++) {
            TokenizedExample ex = examples.get(b);
            int segment = 0;
            int start = 0;      // where the current packed sequence began
            for (int t = 0; t < seq; t++) {
                int at = b * seq + t;
                boolean real = t < ex.length();
                if (real && t == start + ex.segmentLengths()[segment]) {
                    start = t;
                    segment++;
                }
                ids[at] = real ? ex.inputIds()[t] : padId;
                // neat_packing: the mask holds the sequence number (1, 2, ...), as LLaMA-Factory's collator reads it
                mask[at] = !real ? 0 : ex.isolated() ? segment + 1 : 1;
                pos[at] = real ? t - start : t;
                labels[at] = real ? ex.labels()[t] : IGNORE_INDEX;
            }
        }
        return batch(n, seq, ids, mask, pos, labels);
    }

    /** Generation: prompts left-padded to the longest; labels are all -100. */
    public static Batch leftPadded(List<int[]> prompts, int padId) {
        int seq = Math.max(1, prompts.stream().mapToInt(p -> p.length).max().orElse(0));
        int n = prompts.size();
        long[] ids = new long[n * seq];
        long[] mask = new long[n * seq];
        long[] pos = new long[n * seq];
        long[] labels = new long[n * seq];
        for (int b = 0; b < n; b++) {
            int[] p = prompts.get(b);
            int pad = seq - p.length;
            for (int t = 0; t < seq; t++) {
                int at = b * seq + t;
                boolean real = t >= pad;
                ids[at] = real ? p[t - pad] : padId;
                mask[at] = real ? 1 : 0;
                pos[at] = real ? t - pad : 1; // as transformers: cumsum(mask) - 1, padding filled with 1
                labels[at] = IGNORE_INDEX;
            }
        }
        return batch(n, seq, ids, mask, pos, labels);
    }

    /** Row-major (n, seq) arrays into int64 tensors. */
    private static Batch batch(int n, int seq, long[] ids, long[] mask, long[] pos, long[] labels) {
        return new Batch(Tensor.create(ids, n, seq), Tensor.create(mask, n, seq), Tensor.create(pos, n, seq),
                Tensor.create(labels, n, seq));
    }
}
