package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.runtime.Permutation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Which examples every optimizer step trains on (docs/ARCHITECTURE.md invariant 1): epoch e visits the
 * examples in a permutation seeded by (seed, e) and cuts it into global batches of
 * per_device x grad_accum x world_size examples, the last one partial (trained, not dropped).
 * The set of a step therefore depends only on (seed, epoch, global batch size); how it is split
 * over ranks and micro-batches does not change it.
 */
public final class BatchPlan implements java.io.Serializable {
    private final int numExamples;
    private final int globalBatch;
    private final long seed;
    private final boolean shuffle;

    public BatchPlan(int numExamples, int globalBatch, long seed, boolean shuffle) {
        if (numExamples < 1) {
            throw new UserError("no training examples");
        }
        this.numExamples = numExamples;
        this.globalBatch = globalBatch;
        this.seed = seed;
        this.shuffle = shuffle;
    }

    public int numExamples() {
        return numExamples;
    }

    public int globalBatch() {
        return globalBatch;
    }

    /** Whether epochs visit the examples in a seeded permutation (false: disable_shuffling). */
    public boolean shuffles() {
        return shuffle;
    }

    public int stepsPerEpoch() {
        return (numExamples + globalBatch - 1) / globalBatch;
    }

    /** Example indices of optimizer step {@code step} (0-based, counting across epochs). */
    public int[] stepExamples(long step) {
        int epoch = (int) (step / stepsPerEpoch());
        int within = (int) (step % stepsPerEpoch());
        int[] order = permutation(epoch);
        int from = within * globalBatch;
        return Arrays.copyOfRange(order, from, Math.min(numExamples, from + globalBatch));
    }

    /** The visiting order of epoch {@code epoch}: seeded by (seed, epoch); identity without shuffling. */
    public int[] permutation(int epoch) {
        if (!shuffle) {
            return Permutation.shuffled(numExamples, null);
        }
        return Permutation.shuffled(numExamples, new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch));
    }

    /**
     * This rank's micro-batches of a step: position i of the step goes to rank
     * (i / perDevice) % worldSize, micro-batch i / (perDevice x worldSize). Micro-batches past the
     * end of a partial step are empty, never padded with repeated examples.
     */
    public static List<int[]> microBatches(int[] step, int rank, int worldSize, int perDevice, int gradAccum) {
        List<int[]> micros = new ArrayList<>();
        for (int m = 0; m < gradAccum; m++) {
            int from = (m * worldSize + rank) * perDevice;
            int to = Math.min(step.length, from + perDevice);
            micros.add(from >= step.length ? new int[0] : Arrays.copyOfRange(step, from, to));
        }
        return micros;
    }
}
