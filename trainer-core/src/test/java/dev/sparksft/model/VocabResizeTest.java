package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.NewTokens;
import dev.sparksft.train.ModelComparison;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * resize_vocab on a tiny model (hidden 64, a 259-token vocabulary): the padded size, the old rows
 * unchanged, and the new rows' statistics. Statistical checks, each with its tolerance: a sample
 * standard deviation of n values is within 4% of the true one when n >= 3,000 (its relative
 * standard error is 1/sqrt(2n) <= 1.3%, so 4% is three of them); a sample mean of n values within
 * 4 std/sqrt(n) of the true one.
 */
class VocabResizeTest {
    static final int HIDDEN = 64;
    static final int OLD_ROWS = 259;

    @BeforeAll
    static void torch() {
        Torch.load(1);
    }

    static Path model(Path dir, String arch, int vocab) throws Exception {
        TinyModel.write(new TinyModel.Options(arch, dir, 7, HIDDEN, 1, 4, 2, 64, null, 0, 0), Dtype.F32, vocab);
        return dir;
    }

    /**
     * The model's weights with the embedding and head moved by +1: a tiny model's rows average about
     * 0 like its fresh rows, and the mean the new rows get must be told apart from a wrong one.
     */
    static ModelWeights shifted(Path m, ModelConfig cfg) throws Exception {
        ModelWeights w = ModelWeights.load(m, cfg);
        for (String name : List.of(ModelLayout.EMBEDDING, ModelLayout.LM_HEAD)) {
            if (w.tensors().containsKey(name)) {
                w.get(name).add_(new org.bytedeco.pytorch.Scalar(1.0));
            }
        }
        return w;
    }

    /** Rows {@code rows} of a (rows, hidden) float32 tensor, row-major. */
    static float[][] rows(Tensor t, int[] rows) {
        float[] all = ModelComparison.floats(t);
        int h = (int) t.size(1);
        float[][] out = new float[rows.length][];
        for (int i = 0; i < rows.length; i++) {
            out[i] = Arrays.copyOfRange(all, rows[i] * h, (rows[i] + 1) * h);
        }
        return out;
    }

    static int[] range(int from, int to) {
        return IntStream.range(from, to).toArray();
    }

    /** {mean, std} of every value of {@code rows} minus {@code center} (per column). */
    static double[] stats(float[][] rows, double[] center) {
        double sum = 0;
        double sq = 0;
        int n = 0;
        for (float[] r : rows) {
            for (int j = 0; j < r.length; j++) {
                double v = r[j] - center[j];
                sum += v;
                sq += v * v;
                n++;
            }
        }
        double mean = sum / n;
        return new double[] {mean, Math.sqrt(sq / n - mean * mean), n};
    }

    static double[] columnMean(float[][] rows) {
        double[] m = new double[rows[0].length];
        for (float[] r : rows) {
            for (int j = 0; j < r.length; j++) {
                m[j] += r[j] / (double) rows.length;
            }
        }
        return m;
    }

    /** The rows of {@code t} other than {@code ids}. */
    static float[][] others(Tensor t, int[] ids) {
        List<Integer> keep = new ArrayList<>();
        for (int r = 0; r < t.size(0); r++) {
            final int row = r;
            if (Arrays.stream(ids).noneMatch(i -> i == row)) {
                keep.add(r);
            }
        }
        return rows(t, keep.stream().mapToInt(Integer::intValue).toArray());
    }

    static void assertStd(double expected, double[] stats, String what) {
        assertTrue(stats[2] >= 3000, what + ": too few values for the stated tolerance");
        assertEquals(expected, stats[1], 0.04 * expected, what + ": std");
        assertEquals(0, stats[0], 4 * expected / Math.sqrt(stats[2]), what + ": mean");
    }

    @Test
    void addTokensGrowToAMultipleOf64AndTheirRowsAreTheMeanPlusNoise(@TempDir Path dir) throws Exception {
        Path m = model(dir, "llama", 0);
        ModelConfig cfg = ModelConfig.load(m);
        ModelWeights w = shifted(m, cfg);
        int[] ids = range(OLD_ROWS, OLD_ROWS + 200);   // 200 add_tokens: len(tokenizer) 459
        NewTokens tokens = new NewTokens(459, 459, true, false, Arrays.stream(ids).boxed().toList());
        VocabResize.Resized r = VocabResize.apply(cfg, w, tokens, 42);
        assertEquals(512, r.config().vocabSize(), "459 rounded up to a multiple of 64");
        assertEquals(512, r.config().raw().get("vocab_size").asInt(), "config.json says so");
        for (String name : List.of(ModelLayout.EMBEDDING, ModelLayout.LM_HEAD)) {
            Tensor before = w.get(name);
            Tensor after = r.weights().get(name);
            assertArrayEquals(new long[] {512, HIDDEN}, after.sizes().vec().get(), name);
            assertArrayEquals(ModelComparison.floats(before), Arrays.copyOf(ModelComparison.floats(after), OLD_ROWS * HIDDEN),
                    name + ": the old rows are unchanged, bit for bit");
            // padding rows 459..511: transformers' normal(0, initializer_range) draw (53 x 64 = 3392 values)
            assertStd(cfg.initializerRange(), stats(rows(after, range(459, 512)), new double[HIDDEN]), name + " padding rows");
            // the add_tokens rows: the mean of every other row (old and padding) plus normal(0, 1/sqrt(64))
            double[] mean = columnMean(others(after, ids));
            assertStd(1 / Math.sqrt(HIDDEN), stats(rows(after, ids), mean), name + " new rows");
        }
        assertFalse(Arrays.equals(rows(r.weights().get(ModelLayout.EMBEDDING), ids)[0],
                rows(r.weights().get(ModelLayout.LM_HEAD), ids)[0]), "the head draws its own noise");
        assertSame(w.get("model.norm.weight"), r.weights().get("model.norm.weight"), "other weights are untouched");

        // the noise comes from the run seed alone: two ranks (two loads) agree; another seed differs
        VocabResize.Resized again = VocabResize.apply(cfg, shifted(m, cfg), tokens, 42);
        assertArrayEquals(ModelComparison.floats(r.weights().get(ModelLayout.EMBEDDING)),
                ModelComparison.floats(again.weights().get(ModelLayout.EMBEDDING)));
        assertArrayEquals(ModelComparison.floats(r.weights().get(ModelLayout.LM_HEAD)),
                ModelComparison.floats(again.weights().get(ModelLayout.LM_HEAD)));
        VocabResize.Resized other = VocabResize.apply(cfg, shifted(m, cfg), tokens, 43);
        assertFalse(Arrays.equals(ModelComparison.floats(r.weights().get(ModelLayout.EMBEDDING)),
                ModelComparison.floats(other.weights().get(ModelLayout.EMBEDDING))));
    }

    /** A template's stop word alone (no key tokens): every new row, padding included, is the old rows' mean plus noise. */
    @Test
    void aTemplatesTokenGrowsTheTiedEmbeddingAndInitialisesEveryNewRow(@TempDir Path dir) throws Exception {
        Path m = model(dir, "qwen3", 0);
        ModelConfig cfg = ModelConfig.load(m);
        assertTrue(cfg.tieWordEmbeddings());
        ModelWeights w = shifted(m, cfg);
        NewTokens tokens = new NewTokens(OLD_ROWS + 1, OLD_ROWS + 1, false, true, List.of());
        assertTrue(VocabResize.applies(cfg, tokens), "the embedding does not cover the new id: resize_vocab turned on");
        VocabResize.Resized r = VocabResize.apply(cfg, w, tokens, 1);
        Tensor after = r.weights().get(ModelLayout.EMBEDDING);
        assertArrayEquals(new long[] {320, HIDDEN}, after.sizes().vec().get());
        assertFalse(r.weights().tensors().containsKey(ModelLayout.LM_HEAD), "tied: the head is the embedding");
        double[] oldMean = columnMean(rows(w.get(ModelLayout.EMBEDDING), range(0, OLD_ROWS)));
        assertStd(1 / Math.sqrt(HIDDEN), stats(rows(after, range(OLD_ROWS, 320)), oldMean), "rows 259..319");
    }

    @Test
    void tokensThatFitTheEmbeddingAreInitialisedInPlace(@TempDir Path dir) throws Exception {
        Path m = model(dir, "llama", 320);   // a padded embedding, as Qwen's is
        ModelConfig cfg = ModelConfig.load(m);
        ModelWeights w = shifted(m, cfg);
        VocabResize.Resized fits = VocabResize.apply(cfg, w, new NewTokens(260, 260, false, true, List.of()), 1);
        assertSame(w, fits.weights(), "a template's token inside the padding rows: nothing to do (LLaMA-Factory neither)");

        int[] ids = range(OLD_ROWS, OLD_ROWS + 60);   // 60 x 64 = 3840 values
        VocabResize.Resized r = VocabResize.apply(cfg, w, new NewTokens(319, 319, true, false,
                Arrays.stream(ids).boxed().toList()), 1);
        assertEquals(320, r.config().vocabSize(), "no growth");
        Tensor after = r.weights().get(ModelLayout.EMBEDDING);
        assertEquals(ModelComparison.floats(w.get(ModelLayout.EMBEDDING)).length, ModelComparison.floats(after).length);
        assertArrayEquals(Arrays.copyOf(ModelComparison.floats(w.get(ModelLayout.EMBEDDING)), OLD_ROWS * HIDDEN),
                Arrays.copyOf(ModelComparison.floats(after), OLD_ROWS * HIDDEN));
        assertStd(1 / Math.sqrt(HIDDEN), stats(rows(after, ids), columnMean(others(after, ids))), "rows in place");
        assertArrayEquals(rows(w.get(ModelLayout.EMBEDDING), new int[] {319})[0], rows(after, new int[] {319})[0],
                "a row that is no key token's stays");
    }

    @Test
    void aTokenizerLargerThanTheModelNamesResizeVocab(@TempDir Path dir) throws Exception {
        Path m = model(dir, "llama", 0);
        UserError e = assertThrows(UserError.class, () -> CausalLm.load(m, NewTokens.none(300), 0,
                new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU), null, null));
        assertTrue(e.getMessage().contains("the tokenizer has 300 tokens but the model's vocab_size"), e.getMessage());
        assertTrue(e.getMessage().contains("is 259; set resize_vocab: true"), e.getMessage());
        CausalLm resized = CausalLm.load(m, new NewTokens(300, 300, true, false, List.of()), 0,
                new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU), null, null);
        assertEquals(320, resized.config().vocabSize());
    }
}
