package dev.sparksft.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The metrics against values worked out by hand (the formulas of NLTK's sentence_bleu with
 * smoothing method 3 and of the rouge package; exact to the 4 places LLaMA-Factory rounds to).
 */
class SimilarityTest {
    @Test
    void bleuOverCharactersWithSmoothingMethodThree() {
        // "abcd" vs "abce": p1 3/4, p2 2/3, p3 1/2, p4 0/1 -> 1/(2*1); equal lengths: no brevity penalty
        // (0.75 * 2/3 * 0.5 * 0.5)^(1/4) = 0.125^0.25 = 0.594604
        assertEquals(59.4604, Similarity.score("abcd", "abce").get("bleu-4"), 1e-9);
        assertEquals(100.0, Similarity.score("abcd", "abcd").get("bleu-4"), 1e-9);
        assertEquals(0.0, Similarity.score("xyz", "abcd").get("bleu-4"), 1e-9, "no common character");
    }

    @Test
    void englishWordsDistinctNgramsAndUnionLcs() {
        Map<String, Double> s = Similarity.score("the cat sat on the mat", "the cat is on the mat");
        // distinct words {the cat sat on mat} vs {the cat is on mat}: 4 shared of 5 and 5 -> F 0.8
        assertEquals(80.0, s.get("rouge-1"), 1e-9);
        // bigrams: {the cat, on the, the mat} shared of 5 and 5 -> 0.6
        assertEquals(60.0, s.get("rouge-2"), 1e-9);
        // LCS "the cat on the mat" has the distinct words {the cat on mat}: 4 over 5 distinct words each
        assertEquals(80.0, s.get("rouge-l"), 1e-9);
    }

    @Test
    void chineseIsSegmentedByJieba() {
        // jieba: 我/来到/北京/清华大学 and 他/来到/了/网易/杭研/大厦
        assertEquals(List.of("我", "来到", "北京", "清华大学"), Similarity.segment("我来到北京清华大学"));
        Map<String, Double> s = Similarity.score("我来到北京清华大学", "他来到了网易杭研大厦");
        assertEquals(20.0, s.get("rouge-1"), 1e-9);     // 来到: p 1/4, r 1/6 -> F 0.2
        assertEquals(0.0, s.get("rouge-2"), 1e-9);
        assertEquals(20.0, s.get("rouge-l"), 1e-9);
        // characters: p1 3/9 (来 到 大), p2 1/8 (来到), p3 0/7 -> 1/14, p4 0/6 -> 1/24;
        // 9 vs 10 characters: brevity exp(1 - 10/9)
        assertEquals(9.4429, s.get("bleu-4"), 1e-9);
    }

    @Test
    void anEmptyPredictionScoresZero() {
        Map<String, Double> s = Similarity.score("", "the answer");
        s.values().forEach(v -> assertEquals(0.0, v));
        Map<String, Double> avg = Similarity.average(List.of("abcd", ""), List.of("abcd", "x"));
        assertEquals(50.0, avg.get("bleu-4"), 1e-9);
    }
}
