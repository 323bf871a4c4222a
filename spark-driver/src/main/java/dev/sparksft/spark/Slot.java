package dev.sparksft.spark;

import java.io.Serializable;
import java.util.Comparator;

/**
 * Where one example goes in one epoch (docs/ARCHITECTURE.md invariant 1): the rank that trains it, the
 * optimizer step, the micro-batch of that rank, and its position in the step's global batch.
 * Sorting a rank's slots by (step, micro, position) gives exactly the order its trainer consumes.
 */
public record Slot(int rank, long step, int micro, int position) implements Serializable, Comparable<Slot> {
    private static final Comparator<Slot> ORDER = Comparator.comparingInt(Slot::rank).thenComparingLong(Slot::step)
            .thenComparingInt(Slot::micro).thenComparingInt(Slot::position);

    @Override
    public int compareTo(Slot o) {
        return ORDER.compare(this, o);
    }
}
