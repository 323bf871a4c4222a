package dev.sparksft.spark;

import dev.sparksft.data.TokenizedExample;
import dev.sparksft.train.BatchPlan;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

/**
 * Gives every example of every epoch its {@link Slot}, from the same seeded permutation the
 * single-process trainer uses ({@link BatchPlan}), and routes each rank its slots in order:
 * partition r = rank r, sorted by (step, micro, position). Epoch e's position of an example is
 * the inverse of permutation(e), computed once per partition and epoch (O(n) ints).
 */
final class SlotAssigner implements Serializable {
    private final BatchPlan plan;
    private final long totalSteps;
    private final int worldSize;
    private final int perDevice;

    SlotAssigner(BatchPlan plan, long totalSteps, int worldSize, int perDevice) {
        this.plan = plan;
        this.totalSteps = totalSteps;
        this.worldSize = worldSize;
        this.perDevice = perDevice;
    }

    /** Each example once per epoch it is trained in, keyed by its slot, partitioned by rank and sorted. */
    JavaPairRDD<Slot, TokenizedExample> assign(JavaRDD<TokenizedExample> examples) {
        return examples.mapPartitionsToPair(this::slots).repartitionAndSortWithinPartitions(new RankPartitioner(worldSize));
    }

    private Iterator<Tuple2<Slot, TokenizedExample>> slots(Iterator<TokenizedExample> it) {
        int numExamples = plan.numExamples();
        int stepsPerEpoch = plan.stepsPerEpoch();
        int epochs = (int) ((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        int[][] positions = new int[epochs][];
        for (int e = 0; e < epochs; e++) {
            int[] order = plan.permutation(e);
            positions[e] = new int[numExamples];
            for (int p = 0; p < numExamples; p++) {
                positions[e][order[p]] = p;
            }
        }
        List<Tuple2<Slot, TokenizedExample>> out = new ArrayList<>();
        while (it.hasNext()) {
            TokenizedExample ex = it.next();
            for (int e = 0; e < epochs; e++) {
                Slot s = slot(e, stepsPerEpoch, positions[e][(int) ex.index()]);
                if (s != null) {
                    out.add(new Tuple2<>(s, ex));
                }
            }
        }
        return out.iterator();
    }

    /**
     * The slot of permutation position {@code p} of epoch {@code epoch} (null past the last step),
     * the inverse of {@link BatchPlan#microBatches}: position i of a step goes to rank
     * (i / per_device) % world_size, micro-batch i / (per_device x world_size).
     */
    Slot slot(int epoch, int stepsPerEpoch, int p) {
        int globalBatch = plan.globalBatch();
        long step = (long) epoch * stepsPerEpoch + p / globalBatch;
        if (step >= totalSteps) {
            return null;
        }
        int within = p % globalBatch;
        return new Slot((within / perDevice) % worldSize, step, within / (perDevice * worldSize), within);
    }
}
