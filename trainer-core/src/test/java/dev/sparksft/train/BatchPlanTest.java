package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** docs/ARCHITECTURE.md invariants 1 and 3: a step's examples depend only on (seed, epoch, global batch). */
class BatchPlanTest {
    @Test
    void everyEpochIsAPermutationWithAPartialLastStep() {
        BatchPlan plan = new BatchPlan(10, 4, 42, true);
        assertEquals(3, plan.stepsPerEpoch());
        for (int epoch = 0; epoch < 3; epoch++) {
            TreeSet<Integer> seen = new TreeSet<>();
            for (int s = 0; s < 3; s++) {
                Arrays.stream(plan.stepExamples(epoch * 3L + s)).forEach(seen::add);
            }
            assertEquals(10, seen.size(), "epoch " + epoch + " visits every example once");
        }
        assertEquals(2, plan.stepExamples(2).length, "the last step of an epoch is partial, not dropped");
        assertNotEquals(Arrays.toString(plan.permutation(0)), Arrays.toString(plan.permutation(1)), "reshuffled per epoch");
        assertArrayEquals(new BatchPlan(10, 4, 42, true).stepExamples(4), plan.stepExamples(4), "seeded");
        assertArrayEquals(new int[] {4, 5, 6, 7}, new BatchPlan(10, 4, 42, false).stepExamples(1), "disable_shuffling");
    }

    @Test
    void anySplitOverRanksAndMicroBatchesCoversTheSameSet() {
        int[] step = new BatchPlan(37, 8, 7, true).stepExamples(4); // the partial last step: 5 examples
        assertEquals(5, step.length);
        int[][] splits = {{1, 8, 1}, {2, 2, 2}, {4, 1, 2}, {1, 1, 8}}; // (world, per device, grad accum)
        for (int[] s : splits) {
            List<Integer> all = new ArrayList<>();
            for (int rank = 0; rank < s[0]; rank++) {
                List<int[]> micros = BatchPlan.microBatches(step, rank, s[0], s[1], s[2]);
                assertEquals(s[2], micros.size(), "every rank makes grad_accum micro-steps, some empty");
                micros.forEach(m -> Arrays.stream(m).forEach(all::add));
            }
            all.sort(null);
            int[] sorted = step.clone();
            Arrays.sort(sorted);
            assertArrayEquals(sorted, all.stream().mapToInt(Integer::intValue).toArray(), Arrays.toString(s));
        }
    }
}
