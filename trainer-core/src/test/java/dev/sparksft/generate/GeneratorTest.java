package dev.sparksft.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.TinyModel;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** KV-cache generation against recomputing the whole sequence, stopping, ordering and the logits processors. */
class GeneratorTest {
    @TempDir
    static Path dir;
    static final int PAD = 0;

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    static CausalLm tiny(String arch) throws Exception {
        Path model = dir.resolve(arch);
        if (!model.resolve("config.json").toFile().exists()) {
            TinyModel.write(new TinyModel.Options(arch, model, 7, 32, 2, 4, 2, 64, null, 0, 0));
            java.nio.file.Path cfg = model.resolve("config.json");
            if (arch.equals("mistral")) {   // a window much shorter than prompt + answer
                java.nio.file.Files.writeString(cfg, java.nio.file.Files.readString(cfg).replaceFirst("\\{",
                        "{\"sliding_window\": 6, "));
            } else if (arch.equals("mixtral")) {   // Mistral's window, on a mixture of experts
                java.nio.file.Files.writeString(cfg, java.nio.file.Files.readString(cfg)
                        .replace("\"sliding_window\" : null", "\"sliding_window\" : 6"));
            } else if (arch.startsWith("gemma")) {   // the same on the sliding layers
                java.nio.file.Files.writeString(cfg, java.nio.file.Files.readString(cfg)
                        .replace("\"sliding_window\" : 4096", "\"sliding_window\" : 6"));
            } else if (arch.equals("phi3")) {   // Phi-3's window is off by default (null): on every layer here
                java.nio.file.Files.writeString(cfg, java.nio.file.Files.readString(cfg)
                        .replace("\"sliding_window\" : null", "\"sliding_window\" : 6"));
            }
        }
        return CausalLm.load(model, 0);
    }

    /** Prompts of 3 to 17 tokens: batches of 3 mix lengths, so rows are left-padded. */
    static List<int[]> prompts() {
        List<int[]> prompts = new ArrayList<>();
        int[] lengths = {9, 3, 17, 5, 12, 4, 8};
        for (int i = 0; i < lengths.length; i++) {
            int[] p = new int[lengths[i]];
            for (int j = 0; j < p.length; j++) {
                p[j] = 1 + (i * 31 + j * 7) % 200;
            }
            prompts.add(p);
        }
        return prompts;
    }

    static List<int[]> ids(List<Generator.Output> outputs) {
        return outputs.stream().map(Generator.Output::ids).toList();
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3_text", "gemma3", "phi3", "qwen3_moe",
            "mixtral"})
    void greedyWithTheCacheEqualsRecomputingEveryStep(String arch) throws Exception {
        CausalLm model = tiny(arch);
        if (arch.equals("mistral") || arch.startsWith("gemma") || arch.equals("phi3")
                || arch.equals("mixtral")) {
            assertEquals(6, model.config().slidingWindow());
        }
        Sampling greedy = Sampling.greedy(12);
        List<int[]> cached = ids(new Generator(model, greedy, Set.of(), PAD, 3, true).generate(prompts()));
        List<int[]> recomputed = ids(new Generator(model, greedy, Set.of(), PAD, 3, false).generate(prompts()));
        for (int i = 0; i < cached.size(); i++) {
            assertEquals(12, cached.get(i).length);
            assertArrayEquals(recomputed.get(i), cached.get(i), arch + " prompt " + i);
        }
    }

    @Test
    void batchesOfSortedPromptsComeBackInInputOrderAsIfGeneratedAlone() throws Exception {
        CausalLm model = tiny("llama");
        Sampling greedy = Sampling.greedy(8);
        List<int[]> batched = ids(new Generator(model, greedy, Set.of(), PAD, 4, true).generate(prompts()));
        List<int[]> alone = ids(new Generator(model, greedy, Set.of(), PAD, 1, true).generate(prompts()));
        for (int i = 0; i < batched.size(); i++) {
            assertArrayEquals(alone.get(i), batched.get(i), "prompt " + i);
        }
    }

    @Test
    void eachRowStopsAtItsFirstStopTokenWhileTheOthersGoOn() throws Exception {
        CausalLm model = tiny("llama");
        List<int[]> free = ids(new Generator(model, Sampling.greedy(10), Set.of(), PAD, 7, true).generate(prompts()));
        int stop = free.get(0)[3];          // what row 0 produces at its 4th step
        List<Generator.Output> stopped = new Generator(model, Sampling.greedy(10), Set.of(stop), PAD, 7, true)
                .generate(prompts());
        for (int i = 0; i < free.size(); i++) {
            int first = -1;
            for (int t = 0; t < free.get(i).length && first < 0; t++) {
                first = free.get(i)[t] == stop ? t : -1;
            }
            int[] expected = first < 0 ? free.get(i) : Arrays.copyOf(free.get(i), first + 1);
            assertArrayEquals(expected, stopped.get(i).ids(), "row " + i);
            assertEquals(first >= 0, stopped.get(i).stopped());
        }
        assertTrue(stopped.get(0).ids().length <= 4 && stopped.get(0).stopped());
    }

    @Test
    void samplingIsReproducibleWithASeedAndTopKOfOneIsGreedy() throws Exception {
        CausalLm model = tiny("llama");
        Sampling sample = new Sampling(true, 1.5, 1.0, 0, 1.0, 10, 42);
        List<int[]> a = ids(new Generator(model, sample, Set.of(), PAD, 3, true).generate(prompts()));
        List<int[]> b = ids(new Generator(model, sample, Set.of(), PAD, 3, true).generate(prompts()));
        List<int[]> c = ids(new Generator(model, new Sampling(true, 1.5, 1.0, 0, 1.0, 10, 7), Set.of(), PAD, 3, true)
                .generate(prompts()));
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i), b.get(i));
        }
        assertFalse(Arrays.deepEquals(a.toArray(), c.toArray()), "another seed, other draws");
        // each example draws from its own generator: batching and order do not change what it samples
        List<int[]> alone = ids(new Generator(model, sample, Set.of(), PAD, 1, true).generate(prompts()));
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i), alone.get(i), "prompt " + i + " sampled alone");
        }
        List<int[]> topOne = ids(new Generator(model, new Sampling(true, 0.7, 0.9, 1, 1.0, 10, 3), Set.of(), PAD, 3,
                true).generate(prompts()));
        List<int[]> greedy = ids(new Generator(model, Sampling.greedy(10), Set.of(), PAD, 3, true).generate(prompts()));
        for (int i = 0; i < greedy.size(); i++) {
            assertArrayEquals(greedy.get(i), topOne.get(i), "top_k 1 keeps only the argmax");
        }
    }

    static Tensor row(float... logits) {
        return Tensor.create(logits, 1, logits.length);
    }

    static long draw(Sampling s, Tensor logits, Tensor seq, Sampling.Rng rng) {
        return s.next(logits, seq, rng).item_long();
    }

    @Test
    void repetitionPenaltyDividesSeenPositiveScoresAndMultipliesNegativeOnes() {
        Tensor seen = Tensor.create(new long[] {0, 1}, 1, 2);
        Sampling penalty = new Sampling(false, 1, 1, 0, 2.0, 1, 0);
        // [1.2, -1, 1.0] -> token 0 seen: 0.6; token 1 seen: -2; token 2 unseen stays 1.0 -> argmax 2
        assertEquals(2, draw(penalty, row(1.2f, -1f, 1.0f), seen, penalty.newRng(new long[] {0})));
        assertEquals(0, draw(Sampling.greedy(1), row(1.2f, -1f, 1.0f), seen, null));
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // probabilities 0.5, 0.3, 0.2: top_p 0.6 keeps {0, 1}; token 2 is never drawn
        Tensor logits = row((float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2));
        Tensor seq = Tensor.create(new long[] {0}, 1, 1);
        Sampling s = new Sampling(true, 1.0, 0.6, 0, 1.0, 1, 5);
        Sampling.Rng rng = s.newRng(new long[] {0});
        int[] counts = new int[3];
        for (int i = 0; i < 400; i++) {
            counts[(int) draw(s, logits, seq, rng)]++;
        }
        assertEquals(0, counts[2]);
        assertTrue(counts[0] > counts[1] && counts[1] > 80, Arrays.toString(counts));   // 5:3 expected
        assertNotEquals(0, counts[1]);
    }
}
