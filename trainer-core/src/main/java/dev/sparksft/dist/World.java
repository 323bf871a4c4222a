package dev.sparksft.dist;

import org.bytedeco.pytorch.Tensor;

/**
 * The ranks that train together and the collectives the loop makes. Every rank makes the same
 * calls in the same order on every code path (DESIGN.md invariant 3); collectives live here and
 * nowhere else.
 *
 * <p>This is the single-process world (rank 0 of 1), where a sum over ranks is the value itself;
 * the Spark driver adds the multi-rank world over libtorch's ProcessGroup (Gloo on CPU, NCCL on
 * GPU) behind these same calls.
 */
public final class World {
    private final int rank;
    private final int size;

    private World(int rank, int size) {
        this.rank = rank;
        this.size = size;
    }

    public static World single() {
        return new World(0, 1);
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    public boolean isMain() {
        return rank == 0;
    }

    /** Sum of {@code value} over all ranks. */
    public long allReduceSum(long value) {
        return value;
    }

    /** Sum of {@code value} over all ranks. */
    public double allReduceSum(double value) {
        return value;
    }

    /** Replaces each tensor by its sum over all ranks, in place (gradients: SUM, never mean). */
    public void allReduceSumInPlace(Iterable<Tensor> tensors) {
        // one rank: the sum is the tensor itself
    }
}
