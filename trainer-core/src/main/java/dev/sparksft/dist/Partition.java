package dev.sparksft.dist;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which rank owns each trainable tensor under ZeRO: whole tensors, never slices, so that every
 * optimizer (Adam-mini's per-head blocks, GaLore's and Muon's whole matrices) steps its tensors
 * unchanged. Greedy: tensors largest first (ties in trainable order) go to the least-loaded rank
 * (ties to the lowest rank). The partition depends only on the names, sizes and world_size, so
 * every rank computes the same one without talking.
 */
public final class Partition {
    private final Map<String, Integer> owners;   // in trainable order
    private final long[] loads;                  // elements owned, per rank

    private Partition(Map<String, Integer> owners, long[] loads) {
        this.owners = owners;
        this.loads = loads;
    }

    /** @param numels elements per trainable tensor, in trainable order */
    public static Partition of(Map<String, Long> numels, int worldSize) {
        if (worldSize < 1) {
            throw new IllegalStateException("a partition needs at least one rank, got " + worldSize);
        }
        List<String> names = new ArrayList<>(numels.keySet());
        List<String> bySize = new ArrayList<>(names);
        bySize.sort(Comparator.comparingLong((String n) -> -numels.get(n)).thenComparingInt(names::indexOf));
        long[] loads = new long[worldSize];
        Map<String, Integer> chosen = new LinkedHashMap<>();
        for (String name : bySize) {
            int least = 0;
            for (int r = 1; r < worldSize; r++) {
                if (loads[r] < loads[least]) {
                    least = r;
                }
            }
            chosen.put(name, least);
            loads[least] += numels.get(name);
        }
        Map<String, Integer> owners = new LinkedHashMap<>();
        names.forEach(n -> owners.put(n, chosen.get(n)));
        return new Partition(owners, loads);
    }

    /** The rank that steps {@code name} and broadcasts it afterwards. */
    public int owner(String name) {
        Integer r = owners.get(name);
        if (r == null) {
            throw new IllegalStateException(name + " is not in the partition");
        }
        return r;
    }

    /** The names {@code rank} owns, in trainable order. */
    public Set<String> owned(int rank) {
        Set<String> out = new LinkedHashSet<>();
        owners.forEach((n, r) -> {
            if (r == rank) {
                out.add(n);
            }
        });
        return out;
    }

    /** Elements {@code rank} owns. */
    public long load(int rank) {
        return loads[rank];
    }

    public int worldSize() {
        return loads.length;
    }
}
