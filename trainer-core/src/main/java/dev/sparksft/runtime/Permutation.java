package dev.sparksft.runtime;

import java.util.SplittableRandom;

/**
 * Fisher-Yates permutations of 0..n-1 from a seeded {@link SplittableRandom}: the epoch order of
 * the batch plan, the val_size split, BAdam's block order and scatter masks. Plain Java, so the
 * same seed gives the same order on every rank, machine and JVM.
 */
public final class Permutation {
    private Permutation() {}

    /** A permutation of 0..n-1 ({@code rng} null: 0..n-1 in order). */
    public static int[] shuffled(int n, SplittableRandom rng) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        if (rng != null) {
            for (int i = n - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        return order;
    }
}
