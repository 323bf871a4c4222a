package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparksft.runtime.Torch;
import java.util.List;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class CollatorTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static long[] values(Tensor t) {
        Tensor c = t.contiguous();
        long[] out = new long[(int) c.numel()];
        new LongPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    @Test
    void trainingPadsOnTheRightToAMultipleOf8WithIgnoredLabels() {
        Batch b = Collator.rightPadded(List.of(
                new TokenizedExample(0, new int[] {5, 6, 7}, new int[] {-100, 6, 7}),
                new TokenizedExample(1, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, new int[] {-100, -100, 3, 4, 5, 6, 7, 8, 9})),
                0, 8);
        assertEquals(16, b.seqLen(), "9 tokens round up to 16");
        long[] ids = values(b.inputIds());
        long[] mask = values(b.attentionMask());
        long[] labels = values(b.labels());
        assertArrayEquals(new long[] {5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, java.util.Arrays.copyOf(ids, 16));
        assertArrayEquals(new long[] {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, java.util.Arrays.copyOf(mask, 16));
        assertArrayEquals(new long[] {-100, 6, 7, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100},
                java.util.Arrays.copyOf(labels, 16));
        assertEquals(15, values(b.positionIds())[31]);
    }

    @Test
    void generationPadsOnTheLeftWithPositionsFromTheFirstRealToken() {
        Batch b = Collator.leftPadded(List.of(new int[] {7, 8}, new int[] {1, 2, 3, 4}), 0);
        assertArrayEquals(new long[] {0, 0, 7, 8, 1, 2, 3, 4}, values(b.inputIds()));
        assertArrayEquals(new long[] {0, 0, 1, 1, 1, 1, 1, 1}, values(b.attentionMask()));
        assertArrayEquals(new long[] {1, 1, 0, 1, 0, 1, 2, 3}, values(b.positionIds()));
    }
}
