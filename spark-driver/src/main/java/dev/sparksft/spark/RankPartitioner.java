package dev.sparksft.spark;

import org.apache.spark.Partitioner;

/** Partition r holds rank r's slots: the training stage's task r is rank r. */
final class RankPartitioner extends Partitioner {
    private final int worldSize;

    RankPartitioner(int worldSize) {
        this.worldSize = worldSize;
    }

    @Override
    public int numPartitions() {
        return worldSize;
    }

    @Override
    public int getPartition(Object key) {
        return ((Slot) key).rank();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RankPartitioner p && p.worldSize == worldSize;
    }

    @Override
    public int hashCode() {
        return worldSize;
    }
}
