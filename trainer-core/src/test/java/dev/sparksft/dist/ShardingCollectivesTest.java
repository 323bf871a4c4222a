package dev.sparksft.dist;

import static dev.sparksft.dist.WorldTest.floats;
import static dev.sparksft.dist.WorldTest.onRanks;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.runtime.Torch;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The collectives ZeRO adds (broadcast from any root, reduce to a root, text) and the partition, on Gloo threads. */
class ShardingCollectivesTest {
    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    @Test
    void broadcastsFromAnyRootAndReducesToOneRank() throws Exception {
        List<float[]> results = onRanks(3, Duration.ofSeconds(30), w -> {
            int r = w.rank();
            Tensor fromTwo = Tensor.create(new float[] {r, r + 100f}, 2);
            w.broadcast(List.of(fromTwo), 2);
            Tensor g = Tensor.create(new float[] {r + 1f, 10f * (r + 1)}, 2);
            w.reduceSumInPlace(List.of(g), 1);
            String text = w.broadcast(r == 1 ? "näme\t1\t2,3\n" : null, 1);
            assertEquals("näme\t1\t2,3\n", text, "rank " + r);
            assertArrayEquals(new long[] {1 + 2 + 3, 4}, w.allReduceSum(new long[] {r + 1, r == 0 ? 4 : 0}));
            float[] out = new float[4];
            System.arraycopy(floats(fromTwo), 0, out, 0, 2);
            System.arraycopy(floats(g), 0, out, 2, 2);
            return out;
        });
        for (float[] r : results) {
            assertArrayEquals(new float[] {2, 102}, java.util.Arrays.copyOf(r, 2), "broadcast from rank 2");
        }
        assertArrayEquals(new float[] {6, 60}, java.util.Arrays.copyOfRange(results.get(1), 2, 4), "the root holds the sum");
    }

    @Test
    void thePartitionIsGreedyLargestFirstAndCoversEveryTensorOnce() {
        Map<String, Long> numels = new LinkedHashMap<>();
        numels.put("embed", 100L);
        numels.put("a", 30L);
        numels.put("b", 30L);
        numels.put("norm", 5L);
        numels.put("head", 100L);
        Partition p = Partition.of(numels, 2);
        // embed -> 0, head -> 1, a -> 0 (tie: lowest rank), b -> 1, norm -> 0
        assertEquals(Set.of("embed", "a", "norm"), p.owned(0));
        assertEquals(Set.of("b", "head"), p.owned(1));
        assertEquals(135, p.load(0));
        assertEquals(130, p.load(1));
        assertEquals(List.of("embed", "a", "norm"), List.copyOf(p.owned(0)), "owned names keep trainable order");
        Partition four = Partition.of(numels, 4);
        long total = 0;
        for (int r = 0; r < 4; r++) {
            total += four.load(r);
            assertFalse(four.owned(r).isEmpty(), "rank " + r + " owns something of 5 tensors");
        }
        assertEquals(265, total);
        assertEquals(Partition.of(numels, 4).owned(3), four.owned(3), "the same partition every time");
        assertTrue(Partition.of(numels, 1).owned(0).containsAll(numels.keySet()));
    }
}
