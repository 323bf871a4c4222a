package dev.sparksft.generate;

import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.model.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * Greedy decoding of a batch of prompts without a KV cache: each step runs the whole left-padded
 * sequence and appends the argmax of the last position, until every row produced a stop token
 * or {@code maxNewTokens}. Quadratic in the output length; fine for the short answers the
 * quickstart checks. (The KV-cache generator of the generation issue replaces it for predictions.)
 */
public final class GreedyGenerator {
    private GreedyGenerator() {}

    /** Generated ids per prompt, without the prompt and without the stop token. */
    public static List<int[]> generate(LlamaModel model, List<int[]> prompts, int maxNewTokens, Set<Integer> stopIds,
                                       int padId) {
        int n = prompts.size();
        List<int[]> rows = new ArrayList<>(prompts);
        int[][] out = new int[n][maxNewTokens];
        int[] lengths = new int[n];
        boolean[] done = new boolean[n];
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (int t = 0; t < maxNewTokens; t++) {
                long[] next;
                try (PointerScope scope = new PointerScope()) {
                    Batch b = Collator.leftPadded(rows, padId);
                    Tensor logits = model.forward(b.inputIds(), b.attentionMask(), b.positionIds());
                    Tensor last = logits.select(1, b.seqLen() - 1).argmax(new LongOptional(-1), false).contiguous();
                    next = new long[n];
                    new org.bytedeco.javacpp.LongPointer(last.data_ptr()).capacity(n).get(next);
                }
                boolean all = true;
                for (int r = 0; r < n; r++) {
                    if (done[r]) {
                        continue;
                    }
                    int token = (int) next[r];
                    if (stopIds.contains(token)) {
                        done[r] = true;
                    } else {
                        out[r][lengths[r]++] = token;
                        int[] grown = Arrays.copyOf(rows.get(r), rows.get(r).length + 1);
                        grown[grown.length - 1] = token;
                        rows.set(r, grown);
                        all = false;
                    }
                }
                if (all) {
                    break;
                }
            }
        }
        List<int[]> result = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            result.add(Arrays.copyOf(out[r], lengths[r]));
        }
        return result;
    }
}
