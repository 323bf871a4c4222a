package dev.sparksft.spark;

import dev.sparksft.data.TokenizedExample;
import dev.sparksft.train.RankBatches;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import scala.Tuple2;

/**
 * One rank's micro-batches streamed from its partition, which {@link SlotAssigner} sorted by
 * (step, micro, position): step s takes the slots of step s off the stream and groups them by
 * micro-batch. Slots of steps before the one asked for (a run resumed from a checkpoint) are
 * skipped. Only one step's examples are held in memory at a time.
 */
final class SlottedBatches implements RankBatches {
    private final Iterator<Tuple2<Slot, TokenizedExample>> stream;
    private final int rank;
    private final int gradAccum;
    private final FaultInjection faults;
    private Tuple2<Slot, TokenizedExample> next;

    SlottedBatches(Iterator<Tuple2<Slot, TokenizedExample>> stream, int rank, int gradAccum, FaultInjection faults) {
        this.stream = stream;
        this.rank = rank;
        this.gradAccum = gradAccum;
        this.faults = faults;
        this.next = stream.hasNext() ? stream.next() : null;
    }

    @Override
    public List<List<TokenizedExample>> step(long step) {
        faults.beforeStep(rank, step);
        List<List<TokenizedExample>> micros = new ArrayList<>(gradAccum);
        for (int m = 0; m < gradAccum; m++) {
            micros.add(new ArrayList<>());
        }
        while (next != null && next._1().step() <= step) {
            Slot s = next._1();
            if (s.rank() != rank) {
                throw new IllegalStateException("rank " + rank + " was given a slot of rank " + s.rank());
            }
            if (s.step() == step) {
                micros.get(s.micro()).add(next._2());
            }
            next = stream.hasNext() ? stream.next() : null;
        }
        return micros;
    }
}
