package dev.sparksft.dist;

import dev.sparksft.model.ModelLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which gradients {@link Sharding} reduces together when it overlaps the reduction with the
 * backward, and in which order: a pure function of the trainable names and sizes, so every rank
 * computes the same buckets without talking (docs/ARCHITECTURE.md invariant 3).
 */
final class BucketPlan {
    private BucketPlan() {}

    /** DDP's bucket_cap_mb default, 25 MiB of float32: small enough that the first bucket leaves early. */
    static final long DEFAULT_ELEMENTS = 25L * 1024 * 1024 / 4;

    /**
     * The overlapped buckets: the trainable names in the order the layer-by-layer backward
     * completes their gradients (the final norm and LM head, then decoder layers last to first,
     * then the embedding and anything else outside the layers, which a tied head adds to until
     * the very end), consecutive groups packed into buckets of at most {@code bucketElements}
     * elements; a group larger than that is split between tensors. It depends only on names and
     * sizes, so every rank computes the same boundaries in the same order without talking.
     */
    static List<List<String>> of(List<String> names, Map<String, Long> numels, long bucketElements) {
        List<List<String>> groups = new ArrayList<>();
        List<String> head = new ArrayList<>();
        List<String> last = new ArrayList<>();
        TreeMap<Integer, List<String>> layers = new TreeMap<>(Comparator.reverseOrder());
        for (String n : names) {
            int layer = ModelLayout.layerIndex(n);
            if (layer >= 0) {
                layers.computeIfAbsent(layer, k -> new ArrayList<>()).add(n);
            } else if (n.equals(ModelLayout.FINAL_NORM) || n.equals(ModelLayout.LM_HEAD)) {
                head.add(n);
            } else {
                last.add(n);
            }
        }
        groups.add(head);
        groups.addAll(layers.values());
        groups.add(last);
        List<List<String>> out = new ArrayList<>();
        List<String> current = new ArrayList<>();
        long elements = 0;
        for (List<String> group : groups) {
            long size = group.stream().mapToLong(numels::get).sum();
            if (!current.isEmpty() && elements + size > bucketElements) {
                out.add(current);
                current = new ArrayList<>();
                elements = 0;
            }
            for (String n : group) {
                if (!current.isEmpty() && elements + numels.get(n) > bucketElements) {
                    out.add(current);
                    current = new ArrayList<>();
                    elements = 0;
                }
                current.add(n);
                elements += numels.get(n);
            }
        }
        if (!current.isEmpty()) {
            out.add(current);
        }
        return out;
    }
}
