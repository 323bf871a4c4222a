package dev.sparksft.metrics;

import com.huaban.analysis.jieba.JiebaSegmenter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LLaMA-Factory's ComputeSimilarity for generated text against the reference, per example, as
 * percentages rounded to 4 places and then averaged:
 * <ul>
 *   <li>bleu-4: NLTK's sentence_bleu over characters, weights 1/4 each, smoothing method 3
 *       (a zero n-gram count becomes 1 / (2^k x the n-gram total), k = 1, 2, ... in order);</li>
 *   <li>rouge-1, rouge-2, rouge-l: the F-scores of the {@code rouge} package (distinct word
 *       n-grams; summary-level union LCS), over jieba's segmentation of each text, joined by
 *       spaces and split into sentences at '.'.</li>
 * </ul>
 */
public final class Similarity {
    public static final List<String> KEYS = List.of("bleu-4", "rouge-1", "rouge-2", "rouge-l");
    private static JiebaSegmenter segmenter;   // loads a 5 MB dictionary: once per JVM

    private Similarity() {}

    /** The four scores of one prediction against its label, keyed as {@link #KEYS}. */
    public static Map<String, Double> score(String predict, String label) {
        Map<String, Double> s = new LinkedHashMap<>();
        s.put("bleu-4", round(100 * bleu4(codePoints(predict), codePoints(label))));
        String hyp = String.join(" ", segment(predict));
        String ref = String.join(" ", segment(label));
        List<List<String>> hypSentences = sentences(hyp);
        List<List<String>> refSentences = sentences(ref);
        boolean blank = hyp.isBlank() || ref.isBlank() || hypSentences.isEmpty() || refSentences.isEmpty();
        s.put("rouge-1", blank ? 0.0 : round(100 * rougeN(hypSentences, refSentences, 1)));
        s.put("rouge-2", blank ? 0.0 : round(100 * rougeN(hypSentences, refSentences, 2)));
        s.put("rouge-l", blank ? 0.0 : round(100 * rougeL(hypSentences, refSentences)));
        return s;
    }

    /** The mean of each score over all pairs. */
    public static Map<String, Double> average(List<String> predicts, List<String> labels) {
        Map<String, Double> sums = new LinkedHashMap<>();
        KEYS.forEach(k -> sums.put(k, 0.0));
        for (int i = 0; i < predicts.size(); i++) {
            score(predicts.get(i), labels.get(i)).forEach((k, v) -> sums.merge(k, v, Double::sum));
        }
        sums.replaceAll((k, v) -> predicts.isEmpty() ? 0.0 : v / predicts.size());
        return sums;
    }

    static synchronized List<String> segment(String text) {
        if (segmenter == null) {
            segmenter = new JiebaSegmenter();
        }
        return segmenter.sentenceProcess(text);
    }

    /** sentence_bleu([label], predict) with smoothing method 3. */
    static double bleu4(int[] hyp, int[] ref) {
        long[] numerators = new long[4];
        long[] denominators = new long[4];
        for (int n = 1; n <= 4; n++) {
            Map<String, Integer> hypCounts = ngrams(hyp, n);
            Map<String, Integer> refCounts = ngrams(ref, n);
            long clipped = 0;
            long total = 0;
            for (Map.Entry<String, Integer> e : hypCounts.entrySet()) {
                clipped += Math.min(e.getValue(), refCounts.getOrDefault(e.getKey(), 0));
                total += e.getValue();
            }
            numerators[n - 1] = clipped;
            denominators[n - 1] = Math.max(1, total);
        }
        if (numerators[0] == 0) {
            return 0;
        }
        double logSum = 0;
        int k = 1;
        for (int i = 0; i < 4; i++) {
            double p = numerators[i] == 0 ? 1.0 / (Math.pow(2, k++) * denominators[i])
                    : (double) numerators[i] / denominators[i];
            logSum += 0.25 * Math.log(p);
        }
        double brevity = hyp.length > ref.length ? 1 : Math.exp(1 - (double) ref.length / hyp.length);
        return brevity * Math.exp(logSum);
    }

    private static Map<String, Integer> ngrams(int[] tokens, int n) {
        Map<String, Integer> counts = new HashMap<>();
        for (int i = 0; i + n <= tokens.length; i++) {
            counts.merge(Arrays.toString(Arrays.copyOfRange(tokens, i, i + n)), 1, Integer::sum);
        }
        return counts;
    }

    /** The rouge package's sentences: split at '.', empty pieces dropped, whitespace collapsed, words split at ' '. */
    static List<List<String>> sentences(String text) {
        List<List<String>> out = new ArrayList<>();
        for (String piece : text.split("\\.", -1)) {
            if (piece.isEmpty()) {
                continue;
            }
            String normalized = String.join(" ", Arrays.stream(piece.split("(?U)\\s+")).filter(w -> !w.isEmpty()).toList());
            out.add(Arrays.asList(normalized.split(" ", -1)));
        }
        return out;
    }

    private static List<String> words(List<List<String>> sentences) {
        List<String> words = new ArrayList<>();
        sentences.forEach(words::addAll);
        return words;
    }

    /** rouge_n with exclusive (set) n-grams over all the words of all sentences. */
    static double rougeN(List<List<String>> hyp, List<List<String>> ref, int n) {
        Set<List<String>> h = ngramSet(words(hyp), n);
        Set<List<String>> r = ngramSet(words(ref), n);
        Set<List<String>> overlap = new HashSet<>(h);
        overlap.retainAll(r);
        return f(h.isEmpty() ? 0 : (double) overlap.size() / h.size(), r.isEmpty() ? 0 : (double) overlap.size() / r.size());
    }

    private static Set<List<String>> ngramSet(List<String> words, int n) {
        Set<List<String>> set = new HashSet<>();
        for (int i = 0; i + n <= words.size(); i++) {
            set.add(List.copyOf(words.subList(i, i + n)));
        }
        return set;
    }

    /** rouge_l_summary_level: the union, over reference sentences, of the words of their LCS with each hypothesis sentence. */
    static double rougeL(List<List<String>> hyp, List<List<String>> ref) {
        int m = new HashSet<>(words(ref)).size();
        int n = new HashSet<>(words(hyp)).size();
        Set<String> union = new HashSet<>();
        int llcs = 0;
        for (List<String> refSentence : ref) {
            int before = union.size();
            for (List<String> hypSentence : hyp) {
                union.addAll(lcs(refSentence, hypSentence));
            }
            llcs += union.size() - before;
        }
        return m == 0 || n == 0 ? 0 : f((double) llcs / n, (double) llcs / m);
    }

    /** The words of one longest common subsequence of x and y, reconstructed as the rouge package does. */
    static List<String> lcs(List<String> x, List<String> y) {
        int[][] t = new int[x.size() + 1][y.size() + 1];
        for (int i = 1; i <= x.size(); i++) {
            for (int j = 1; j <= y.size(); j++) {
                t[i][j] = x.get(i - 1).equals(y.get(j - 1)) ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
            }
        }
        List<String> out = new ArrayList<>();
        int i = x.size();
        int j = y.size();
        while (i > 0 && j > 0) {
            if (x.get(i - 1).equals(y.get(j - 1))) {
                out.add(0, x.get(i - 1));
                i--;
                j--;
            } else if (t[i - 1][j] > t[i][j - 1]) {
                i--;
            } else {
                j--;
            }
        }
        return out;
    }

    /** The rouge package's F: 2 p r / (p + r + 1e-8). */
    private static double f(double p, double r) {
        return 2.0 * (p * r / (p + r + 1e-8));
    }

    private static int[] codePoints(String s) {
        return s.codePoints().toArray();
    }

    /** Python's round(x, 4) for the values seen here (half-even on the decimal value). */
    static double round(double v) {
        return new java.math.BigDecimal(v).setScale(4, java.math.RoundingMode.HALF_EVEN).doubleValue();
    }
}
