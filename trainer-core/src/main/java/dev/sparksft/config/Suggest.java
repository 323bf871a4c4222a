package dev.sparksft.config;

import java.util.Collection;

/** "Did you mean" suggestions by edit distance, for unknown keys and names. */
public final class Suggest {
    private Suggest() {}

    /** The closest candidate to {@code word}, or null when none is reasonably close. */
    public static String nearest(String word, Collection<String> candidates) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = distance(word.toLowerCase(java.util.Locale.ROOT), c.toLowerCase(java.util.Locale.ROOT));
            if (d < bestDistance || (d == bestDistance && best != null && c.compareTo(best) < 0)) {
                best = c;
                bestDistance = d;
            }
        }
        // a near spelling only: a transposition or two typos (three in a long name), never a different word
        return best != null && bestDistance <= Math.min(3, Math.max(2, word.length() / 4)) ? best : null;
    }

    /** ": did you mean 'x'?" or "" when nothing is close. */
    public static String didYouMean(String word, Collection<String> candidates) {
        String n = nearest(word, candidates);
        return n == null ? "" : " (did you mean '" + n + "'?)";
    }

    /** Levenshtein distance. */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
