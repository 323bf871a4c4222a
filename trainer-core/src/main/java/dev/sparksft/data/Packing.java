package dev.sparksft.data;

import dev.sparksft.UserError;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code packing}: LLaMA-Factory's PackedSupervisedDatasetProcessor. Examples are grouped by its
 * greedy knapsack (lengths sorted; each pack repeatedly takes the longest example that still
 * fits into cutoff_len) and concatenated; position ids restart at every sequence. With
 * {@code neat_packing} attention stays within each sequence, so a packed batch computes exactly
 * what the same sequences compute unpacked. Two deliberate differences: the whole training set is
 * packed at once (LLaMA-Factory packs each preprocessing batch of 1,000), and the first label of
 * every sequence is masked, so no sequence is trained to predict the start of the next one (the
 * unpacked loss never has that target either).
 */
public final class Packing {
    private Packing() {}

    /**
     * Which examples go into each pack: positions into {@code lengths}, in the order they are
     * concatenated (LLaMA-Factory's greedy_knapsack with its length-to-index bookkeeping).
     */
    public static List<int[]> assign(int[] lengths, int capacity) {
        TreeMap<Integer, Deque<Integer>> byLength = new TreeMap<>();   // length -> positions; the last is taken first
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] > capacity) {
                throw new UserError("example " + i + " has " + lengths[i] + " tokens, more than cutoff_len "
                        + capacity);
            }
            byLength.computeIfAbsent(lengths[i], k -> new ArrayDeque<>()).addLast(i);
        }
        List<int[]> packs = new ArrayList<>();
        while (!byLength.isEmpty()) {
            List<Integer> pack = new ArrayList<>();
            int remaining = capacity;
            while (true) {
                Map.Entry<Integer, Deque<Integer>> fit = byLength.floorEntry(remaining);   // the longest that fits
                if (fit == null) {
                    break;
                }
                pack.add(fit.getValue().pollLast());
                remaining -= fit.getKey();
                if (fit.getValue().isEmpty()) {
                    byLength.remove(fit.getKey());
                }
            }
            packs.add(pack.stream().mapToInt(Integer::intValue).toArray());
        }
        return packs;
    }

    /** The examples of one pack concatenated, as example {@code index}. */
    public static TokenizedExample concat(long index, List<TokenizedExample> members, boolean neat) {
        int total = members.stream().mapToInt(TokenizedExample::length).sum();
        int[] ids = new int[total];
        int[] labels = new int[total];
        int[] segments = new int[members.size()];
        int at = 0;
        for (int s = 0; s < members.size(); s++) {
            TokenizedExample ex = members.get(s);
            if (!ex.images().isEmpty()) {   // SupervisedEncoder.of refuses packing with an image template
                throw new IllegalStateException("example " + ex.index() + " has images and cannot be packed");
            }
            System.arraycopy(ex.inputIds(), 0, ids, at, ex.length());
            System.arraycopy(ex.labels(), 0, labels, at, ex.length());
            labels[at] = TokenizedExample.IGNORE_INDEX;   // never a target across the boundary
            segments[s] = ex.length();
            at += ex.length();
        }
        return new TokenizedExample(index, ids, labels, segments, neat, List.of());
    }

    /** The whole training set packed into at most cutoff_len tokens per example, renumbered 0.. */
    public static List<TokenizedExample> pack(List<TokenizedExample> examples, int cutoffLen, boolean neat) {
        int[] lengths = examples.stream().mapToInt(TokenizedExample::length).toArray();
        List<TokenizedExample> packed = new ArrayList<>();
        for (int[] pack : assign(lengths, cutoffLen)) {
            List<TokenizedExample> members = new ArrayList<>();
            for (int i : pack) {
                members.add(examples.get(i));
            }
            packed.add(concat(packed.size(), members, neat));
        }
        return packed;
    }
}
