package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.TinyModel;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PackingTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    @Test
    void greedyKnapsackTakesTheLongestThatFits() {
        // sorted 1 2 3 5 7 8 into 10: [8 2] [7 3] [5 1], as positions of the lengths
        List<int[]> packs = Packing.assign(new int[] {5, 3, 8, 2, 7, 1}, 10);
        assertEquals(3, packs.size());
        assertArrayEquals(new int[] {2, 3}, packs.get(0));
        assertArrayEquals(new int[] {4, 1}, packs.get(1));
        assertArrayEquals(new int[] {0, 5}, packs.get(2));
        // equal lengths: the later example is taken first (LLaMA-Factory's length2indexes[length].pop())
        assertArrayEquals(new int[] {1, 0}, Packing.assign(new int[] {4, 4}, 8).get(0));
        assertThrows(IllegalArgumentException.class, () -> Packing.assign(new int[] {11}, 10));
    }

    @Test
    void packedSequencesRestartPositionsAndNeverTargetTheNextStart() {
        TokenizedExample a = new TokenizedExample(0, new int[] {5, 6, 7}, new int[] {-100, 6, 7});
        TokenizedExample b = new TokenizedExample(1, new int[] {8, 9}, new int[] {8, 9});   // train_on_prompt-like labels
        TokenizedExample packed = Packing.concat(0, List.of(a, b), true);
        assertEquals(a.numTargets() + b.numTargets(), packed.numTargets());
        Batch batch = Collator.rightPadded(List.of(packed), 0, 8);
        assertArrayEquals(new long[] {5, 6, 7, 8, 9, 0, 0, 0}, CollatorTest.values(batch.inputIds()));
        assertArrayEquals(new long[] {0, 1, 2, 0, 1, 5, 6, 7}, CollatorTest.values(batch.positionIds()));
        assertArrayEquals(new long[] {1, 1, 1, 2, 2, 0, 0, 0}, CollatorTest.values(batch.attentionMask()));
        assertArrayEquals(new long[] {-100, 6, 7, -100, 9, -100, -100, -100}, CollatorTest.values(batch.labels()));
        Batch plain = Collator.rightPadded(List.of(Packing.concat(0, List.of(a, b), false)), 0, 8);
        assertArrayEquals(new long[] {1, 1, 1, 1, 1, 0, 0, 0}, CollatorTest.values(plain.attentionMask()));
    }

    static TokenizedExample random(long index, int length, SplittableRandom rng) {
        int[] ids = new int[length];
        int[] labels = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = 3 + rng.nextInt(60);
            labels[i] = i < length / 3 ? -100 : ids[i];
        }
        return new TokenizedExample(index, ids, labels);
    }

    static double lossSum(CausalLm model, List<TokenizedExample> batch) {
        Batch b = Collator.rightPadded(batch, 0, 8);
        return new SftLoss(SftLoss.Kind.CROSS_ENTROPY, 1.0).sum(model.forward(b.inputIds(), b.attentionMask(),
                b.positionIds()), b.labels()).item_double();
    }

    @Test
    void neatPackingGivesTheLossOfTheSameSequencesUnpacked(@TempDir Path dir) throws Exception {
        TinyModel.write(new TinyModel.Options("llama", dir, 4, 32, 2, 4, 2, 64, null, 0, 0));
        CausalLm model = CausalLm.load(dir, 0);
        SplittableRandom rng = new SplittableRandom(1);
        List<TokenizedExample> examples = List.of(random(0, 11, rng), random(1, 5, rng), random(2, 17, rng),
                random(3, 9, rng), random(4, 3, rng));
        List<TokenizedExample> packed = Packing.pack(examples, 24, true);
        assertEquals(List.of(22, 23), packed.stream().map(TokenizedExample::length).toList());   // [17 5] [11 9 3]
        double unpacked = lossSum(model, examples);
        double neat = lossSum(model, packed);
        // float32 sums over 27 targets in another order
        assertEquals(unpacked, neat, 1e-5 * unpacked, "neat packing must not change the loss");
        double crossTalk = lossSum(model, Packing.pack(examples, 24, false));
        // measured: 2.5e-4 relative on this random model (its attention is nearly uniform), 25x the neat tolerance
        assertTrue(Math.abs(crossTalk - unpacked) > 1e-4 * unpacked,
                "plain packing lets sequences attend to each other, so its loss differs: " + crossTalk + " vs " + unpacked);
    }
}
