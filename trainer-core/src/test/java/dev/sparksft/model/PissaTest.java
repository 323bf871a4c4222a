package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * PiSSA against numpy's SVD (src/test/python/make_pissa_fixtures.py) and a matrix with known
 * singular values: the factors, the residual, the randomized SVD's subspace, the unchanged model
 * at step 0, and the conversion to a plain LoRA over the original weights. Tolerances: 1e-5 on
 * float32 factors of O(1) matrices, 1e-4 on logits.
 */
class PissaTest {
    @TempDir
    static Path dir;
    static Path modelDir;
    static JsonNode fixtures;

    @BeforeAll
    static void setUp() throws Exception {
        Torch.load(1);
        modelDir = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("qwen2", modelDir, 5, 32, 2, 4, 2, 64, null, 0, 0));
        fixtures = new ObjectMapper().readTree(Paths.get(PissaTest.class.getResource("/pissa/svd.json").toURI()).toFile());
    }

    static Tensor matrix(JsonNode rows) {
        int r = rows.size();
        int c = rows.get(0).size();
        float[] data = new float[r * c];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                data[i * c + j] = (float) rows.get(i).get(j).asDouble();
            }
        }
        return Tensor.create(data, r, c);
    }

    static double maxDiff(Tensor a, Tensor b) {
        return a.to(torch.ScalarType.Float).sub(b.to(torch.ScalarType.Float)).abs().max().item_double();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"tall", "wide"})
    void exactFactorsAreNumpysTopSingularTriplets(String name) {
        JsonNode c = fixtures.get(name);
        Tensor w = matrix(c.get("w"));
        double scaling = c.get("alpha").asDouble() / c.get("rank").asInt();
        LoraAdapter.Pair f = Pissa.factors(name, w, c.get("rank").asInt(), scaling, -1, 0);
        Tensor a = matrix(c.get("a"));
        Tensor b = matrix(c.get("b"));
        // singular vectors are defined up to sign: compare magnitudes and the sign-free product
        assertTrue(maxDiff(f.a().abs(), a.abs()) < 1e-5, name + ": |A| differs by " + maxDiff(f.a().abs(), a.abs()));
        assertTrue(maxDiff(f.b().abs(), b.abs()) < 1e-5, name + ": |B| differs by " + maxDiff(f.b().abs(), b.abs()));
        assertTrue(maxDiff(f.b().matmul(f.a()), b.matmul(a)) < 1e-5, name + ": B A differs");
        Tensor residual = w.sub(f.b().matmul(f.a()), new Scalar(scaling));
        assertTrue(maxDiff(residual, matrix(c.get("w_res"))) < 1e-5, name + ": the residual differs from numpy's");
        assertTrue(maxDiff(residual.add(f.b().matmul(f.a()), new Scalar(scaling)), w) < 1e-5, "W_res + s B A != W");
    }

    /** W (5, 4) = diag(5, 3, 2, 1): the top-2 factors are e_1, e_2 scaled by sqrt(s_i / scaling), the residual diag(0, 0, 2, 1). */
    @ParameterizedTest(name = "pissa_iter {0}")
    @CsvSource({"-1", "16"})   // randomized: the subspace error shrinks as (s_3 / s_2)^(2 niter + 1) = (2/3)^33
    void aMatrixWithKnownSingularValues(int iter) {
        float[] d = new float[20];
        float[] s = {5, 3, 2, 1};
        for (int i = 0; i < 4; i++) {
            d[i * 4 + i] = s[i];
        }
        Tensor w = Tensor.create(d, 5, 4);
        LoraAdapter.Pair f = Pissa.factors("diag", w, 2, 2.0, iter, 7);
        float[] wantA = new float[8];
        wantA[0] = (float) Math.sqrt(2.5);
        wantA[5] = (float) Math.sqrt(1.5);
        float[] wantB = new float[10];
        wantB[0] = (float) Math.sqrt(2.5);
        wantB[3] = (float) Math.sqrt(1.5);
        assertTrue(maxDiff(f.a().abs(), Tensor.create(wantA, 2, 4)) < 1e-5, "A = diag(sqrt(S/scaling)) Vh");
        assertTrue(maxDiff(f.b().abs(), Tensor.create(wantB, 5, 2)) < 1e-5, "B = U diag(sqrt(S/scaling))");
        float[] res = new float[20];
        res[10] = 2;
        res[15] = 1;
        assertTrue(maxDiff(w.sub(f.b().matmul(f.a()), new Scalar(2.0)), Tensor.create(res, 5, 4)) < 1e-5);
    }

    /** ||U U^T - U_np U_np^T||_max: how far a basis is from numpy's top-r left singular subspace. */
    static double subspaceError(Tensor u, Tensor uNp) {
        return maxDiff(u.matmul(u.t()), uNp.matmul(uNp.t()));
    }

    @Test
    void theRandomizedSvdRecoversTheTopSubspaceOfADecayingSpectrum() {
        JsonNode c = fixtures.get("wide");     // (24, 40), singular values 0.5^i: transposed inside
        Tensor w = matrix(c.get("w"));
        Tensor uNp = matrix(c.get("u_r"));
        Tensor vNp = matrix(c.get("vh_r")).t();
        int r = c.get("rank").asInt();
        Map<Integer, Double> errors = new LinkedHashMap<>();
        for (int niter : new int[] {0, 2, 16}) {
            Tensor[] usv = Pissa.lowRankSvd(w, r, niter, Torch.generator(3, 1));
            assertEquals(List.of(24L, (long) r), List.of(usv[0].size(0), usv[0].size(1)));
            assertEquals(List.of(40L, (long) r), List.of(usv[2].size(0), usv[2].size(1)));
            double err = Math.max(subspaceError(usv[0], uNp), subspaceError(usv[2], vNp));
            errors.put(niter, err);
            if (niter == 16) {
                float[] s = new float[r];
                for (int i = 0; i < r; i++) {
                    s[i] = (float) c.get("s").get(i).asDouble();
                }
                assertTrue(maxDiff(usv[1], Tensor.create(s, r)) < 1e-5, "singular values " + usv[1]);
            }
        }
        System.out.printf("randomized SVD, top-3 subspace error by niter: %s%n", errors);
        assertTrue(errors.get(16) < 1e-4, "16 subspace iterations must recover the top subspace: " + errors);
        assertTrue(errors.get(0) > 10 * errors.get(16), "the iterations must matter (niter 0 is a plain sketch): " + errors);
        Tensor[] again = Pissa.lowRankSvd(w, r, 2, Torch.generator(3, 1));
        assertEquals(0, maxDiff(again[0], Pissa.lowRankSvd(w, r, 2, Torch.generator(3, 1))[0]), "seeded: the same draw");
    }

    static LoraAdapter.Settings settings(int rank, int alpha, boolean rslora) {
        return new LoraAdapter.Settings(rank, alpha, 0, rslora, List.of("all"), List.of());
    }

    static Tensor logits(CausalLm m) {
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3, 4, 8, 6, 10}, 2, 5);
        Tensor mask = torch.ones(2, 5).to(torch.ScalarType.Long);
        return m.forward(ids, mask, Tensors.positions(2, 5));
    }

    static Map<String, Tensor> copies(ModelWeights weights) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        weights.tensors().forEach((n, t) -> out.put(n, t.clone()));
        return out;
    }

    @Test
    void aPissaModelComputesTheBaseModelAtStepZero() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        Tensor before = logits(base);
        Map<String, Tensor> original = copies(base.weights());
        LoraAdapter adapter = LoraAdapter.create(base.weights(), settings(4, 8, false), 3);
        Pissa.initialise(base.weights(), adapter, 16, 42);
        assertEquals("pissa_niter_16", adapter.init());
        double moved = 0;
        double worst = 0;
        for (var e : adapter.pairs().entrySet()) {
            Tensor w = base.weights().get(e.getKey());
            moved = Math.max(moved, maxDiff(w, original.get(e.getKey())));
            Tensor effective = w.add(e.getValue().b().matmul(e.getValue().a()), new Scalar(adapter.scaling()));
            worst = Math.max(worst, maxDiff(effective, original.get(e.getKey())));
        }
        double gap = maxDiff(logits(base.withAdapter(adapter)), before);
        System.out.printf("PiSSA init: |W_res + s B A - W| <= %.2e, base weights moved by %.3f, logits %.2e%n", worst,
                moved, gap);
        assertTrue(moved > 1e-2, "the base weights must become the residual");
        assertTrue(worst < 1e-5, "W_res + scaling B A must equal W, off by " + worst);
        assertTrue(gap < 1e-4, "the model must be unchanged at step 0, off by " + gap);
    }

    /** Training moves A and B away from the PiSSA factors: random changes of the scale of the factors. */
    static void train(LoraAdapter adapter) {
        try (NoGradGuard g = new NoGradGuard()) {
            adapter.pairs().values().forEach(p -> {
                p.a().add_(torch.randn(p.a().sizes().vec().get()).mul_(new Scalar(0.05)));
                p.b().add_(torch.randn(p.b().sizes().vec().get()).mul_(new Scalar(0.05)));
            });
        }
    }

    @ParameterizedTest(name = "rslora {0}")
    @CsvSource({"false", "true"})
    void theConvertedAdapterGivesTheTrainedModelOverTheOriginalBase(boolean rslora, @TempDir Path out) throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        LoraAdapter adapter = LoraAdapter.create(base.weights(), settings(4, 8, rslora), 3);
        Pissa.initialise(base.weights(), adapter, -1, 42);
        adapter.keepInitial();
        train(adapter);
        CausalLm trained = base.withAdapter(adapter);
        Tensor want = logits(trained);
        Map<String, Tensor> effective = new LinkedHashMap<>();
        adapter.pairs().forEach((n, p) -> effective.put(n,
                base.weights().get(n).add(p.b().matmul(p.a()), new Scalar(adapter.scaling()))));

        LoraAdapter converted = adapter.convertedAdapter();
        assertEquals(8, converted.rank());
        assertEquals(adapter.scaling(), converted.scaling(), 1e-12, "the conversion keeps the scaling");
        converted.save(out, base.weights(), modelDir.toString());
        JsonNode cfg = new ObjectMapper().readTree(out.resolve(LoraAdapter.CONFIG_FILE).toFile());
        assertEquals(8, cfg.get("r").asInt());
        assertEquals(rslora ? 8 * Math.sqrt(2) : 16, cfg.get("lora_alpha").asDouble(), 1e-12);
        assertEquals(!rslora, cfg.get("lora_alpha").isIntegralNumber(), "PEFT writes an integer alpha unless rsLoRA's");
        assertTrue(cfg.get("init_lora_weights").isBoolean() && cfg.get("init_lora_weights").asBoolean());

        CausalLm original = CausalLm.load(modelDir, 0);
        LoraAdapter loaded = LoraAdapter.load(out, original.weights(), 0);
        double gap = maxDiff(logits(original.withAdapter(loaded)), want);
        loaded.mergeInto(original.weights());
        double merged = 0;
        for (var e : effective.entrySet()) {
            merged = Math.max(merged, maxDiff(original.weights().get(e.getKey()), e.getValue()));
        }
        System.out.printf("PiSSA conversion (rslora %s): logits %.2e, merged weights %.2e%n", rslora, gap, merged);
        assertTrue(gap < 1e-4, "original base + converted adapter must compute the trained model, off by " + gap);
        assertTrue(merged < 1e-5, "merged(original, converted) must be W_res + s B A, off by " + merged);
    }

    @Test
    void aSavedPissaAdapterReloadsOverTheOriginalBase(@TempDir Path out) throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        LoraAdapter adapter = LoraAdapter.create(base.weights(), settings(4, 8, false), 3);
        Pissa.initialise(base.weights(), adapter, 4, 42);
        train(adapter);
        Tensor want = logits(base.withAdapter(adapter));
        adapter.save(out, base.weights(), modelDir.toString());
        JsonNode cfg = new ObjectMapper().readTree(out.resolve(LoraAdapter.CONFIG_FILE).toFile());
        assertEquals("pissa_niter_4", cfg.get("init_lora_weights").asText(), "PEFT's marker: the base must become the residual");
        assertEquals(4, cfg.get("r").asInt());

        CausalLm original = CausalLm.load(modelDir, 0);
        LoraAdapter loaded = LoraAdapter.load(out, original.weights(), 42);
        double residual = 0;
        for (String n : adapter.pairs().keySet()) {
            residual = Math.max(residual, maxDiff(original.weights().get(n), base.weights().get(n)));
        }
        assertEquals(0, residual, "the same seed recomputes the residual exactly");
        assertTrue(maxDiff(logits(original.withAdapter(loaded)), want) < 1e-5);

        CausalLm other = CausalLm.load(modelDir, 0);
        LoraAdapter.load(out, other.weights(), 43);
        double drift = 0;
        for (String n : adapter.pairs().keySet()) {
            drift = Math.max(drift, maxDiff(other.weights().get(n), base.weights().get(n)));
        }
        System.out.printf("PiSSA reload with another seed: residual differs by %.2e%n", drift);
        assertNotEquals(0, drift, "another seed draws another sketch (as PEFT's reload does)");
    }

    @Test
    void aRankAboveTheWeightsRankIsRefused() {
        Tensor w = torch.randn(6, 3);
        UserError e = assertThrows(UserError.class, () -> Pissa.factors("model.layers.0.mlp.x.weight", w, 4, 2, -1, 0));
        assertTrue(e.getMessage().contains("lora_rank 4") && e.getMessage().contains("6 x 3")
                && e.getMessage().contains("lora_rank <= 3"), e.getMessage());
    }

    static SftConfig config(String extra) throws Exception {
        Path f = Files.createTempFile(dir, "pissa", ".yaml");
        Files.writeString(f, "model_name_or_path: m\ntemplate: chatml\ndataset: d\n" + extra);
        return SftConfig.load(f, List.of());
    }

    @Test
    void configurationErrorsNameTheKeyTheValueAndTheFix() throws Exception {
        var e = assertThrows(IllegalArgumentException.class, () -> config("finetuning_type: freeze\npissa_init: true\n"));
        assertTrue(e.getMessage().contains("pissa_init is only valid for LoRA training")
                && e.getMessage().contains("finetuning_type: freeze") && e.getMessage().contains("set finetuning_type: lora"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config("pissa_init: true\npissa_iter: -2\n"));
        assertTrue(e.getMessage().contains("pissa_iter must be -1 (exact SVD) or >= 0") && e.getMessage().contains("got -2"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config("finetuning_type: full\npissa_convert: true\n"));
        assertTrue(e.getMessage().contains("pissa_convert") && e.getMessage().contains("finetuning_type: full"),
                e.getMessage());
        SftConfig ok = config("pissa_init: true\npissa_iter: -1\npissa_convert: true\n");
        assertTrue(ok.finetuning().pissaInit() && ok.finetuning().pissaConvert());
        assertEquals(-1, ok.finetuning().pissaIter());
        assertEquals(16, config("pissa_init: true\n").finetuning().pissaIter(), "LLaMA-Factory's default");
    }
}
