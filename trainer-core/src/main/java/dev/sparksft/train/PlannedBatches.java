package dev.sparksft.train;

import dev.sparksft.data.TokenizedExample;
import java.util.ArrayList;
import java.util.List;

/** {@link RankBatches} cut from the whole training set held in memory (the single-process path). */
public final class PlannedBatches implements RankBatches {
    private final List<TokenizedExample> examples;
    private final BatchPlan plan;
    private final int rank;
    private final int worldSize;
    private final int perDevice;
    private final int gradAccum;

    public PlannedBatches(List<TokenizedExample> examples, BatchPlan plan, int rank, int worldSize, int perDevice,
                          int gradAccum) {
        this.examples = examples;
        this.plan = plan;
        this.rank = rank;
        this.worldSize = worldSize;
        this.perDevice = perDevice;
        this.gradAccum = gradAccum;
    }

    @Override
    public List<List<TokenizedExample>> step(long step) {
        List<List<TokenizedExample>> micros = new ArrayList<>();
        for (int[] micro : BatchPlan.microBatches(plan.stepExamples(step), rank, worldSize, perDevice, gradAccum)) {
            List<TokenizedExample> batch = new ArrayList<>(micro.length);
            for (int i : micro) {
                batch.add(examples.get(i));
            }
            micros.add(batch);
        }
        return micros;
    }
}
