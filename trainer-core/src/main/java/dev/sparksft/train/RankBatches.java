package dev.sparksft.train;

import dev.sparksft.data.TokenizedExample;
import java.util.List;

/**
 * The examples one rank trains on, step by step: its gradient_accumulation_steps micro-batches
 * of each optimizer step, as the {@link BatchPlan} assigns them (docs/ARCHITECTURE.md invariant 1). In one
 * process they come from the whole dataset in memory ({@link PlannedBatches}); under Spark each
 * rank streams its own share, already ordered by (step, micro-batch).
 */
public interface RankBatches {
    /**
     * This rank's micro-batches of optimizer step {@code step} (0-based), gradient_accumulation_steps
     * of them; a micro-batch with no data for this rank (the last, partial step) is empty. Steps
     * are asked for once each, in increasing order, starting at the step training (re)starts from.
     */
    List<List<TokenizedExample>> step(long step);
}
