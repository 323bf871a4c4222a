package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Logits and mean loss of each architecture against the float64 numpy reference in
 * src/test/python/make_parity_fixtures.py (HF semantics written independently of this code).
 * Tolerance: 1e-4 relative to the largest |logit| of the batch, and 1e-4 relative on the loss.
 * The Gemma fixtures are HF directories as save_pretrained writes them (gemma2 without
 * tie_word_embeddings: true; gemma3 with a text_config of only the non-default keys and its
 * weights under model.language_model.), with soft-caps and windows small enough to matter.
 * The Phi-3 fixtures hold fused qkv_proj / gate_up_proj weights: phi3 with a window of 5, phi4_mini
 * with Phi-4-mini's partial rotary (0.75) and longrope past an original length of 8.
 */
class ParityTest {
    static final double RELATIVE_TOLERANCE = 1e-4;

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Path fixture(String arch) throws Exception {
        return Paths.get(ParityTest.class.getResource("/parity/" + arch + "/config.json").toURI()).getParent();
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "phi3", "phi4_mini",
            "qwen3_moe", "qwen3_moe_unnormalised", "mixtral"})
    void logitsAndLossMatchReference(String arch) throws Exception {
        Path dir = fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
            Tensor ids = Tensors.longs(expected.get("input_ids"));
            Tensor mask = Tensors.longs(expected.get("attention_mask"));
            Tensor labels = Tensors.longs(expected.get("labels"));
            Tensor positions = Tensors.positions(ids.size(0), ids.size(1));

            Tensor logits = model.forward(ids, mask, positions).contiguous();
            long[] shape = {logits.size(0), logits.size(1), logits.size(2)};
            long[] wantShape = new ObjectMapper().convertValue(expected.get("logits_shape"), long[].class);
            assertArrayEquals(wantShape, shape);

            float[] got = Tensors.floats(logits);
            JsonNode want = expected.get("logits");
            long t = shape[1];
            long v = shape[2];
            double maxAbs = 0;
            for (JsonNode w : want) {
                maxAbs = Math.max(maxAbs, Math.abs(w.asDouble()));
            }
            double worst = 0;
            for (int i = 0; i < got.length; i++) {
                long row = i / (t * v);
                long pos = (i / v) % t;
                if (mask.get(row).get(pos).item_long() == 0) {
                    continue; // padded positions are never read
                }
                worst = Math.max(worst, Math.abs(got[i] - want.get(i).asDouble()) / maxAbs);
            }
            System.out.printf("parity %s: max |logit error| / max |logit| = %.2e%n", arch, worst);
            assertTrue(worst < RELATIVE_TOLERANCE, arch + " logits differ by " + worst + " relative");

            double loss = CausalLmLoss.mean(logits, labels);
            double wantLoss = expected.get("loss").asDouble();
            System.out.printf("parity %s: loss %.7f vs reference %.7f (rel %.2e)%n", arch, loss, wantLoss,
                    Math.abs(loss - wantLoss) / wantLoss);
            assertEquals(wantLoss, loss, wantLoss * RELATIVE_TOLERANCE);
        }
    }

    /**
     * bf16: autocast (float32 master weights, bf16 matmuls through oneDNN) and pure bf16 (weights
     * in bf16 too) give the reference's float64 loss within 2e-2 relative.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "phi3", "phi4_mini",
            "qwen3_moe", "qwen3_moe_unnormalised", "mixtral"})
    void bf16LossIsWithinTwoPercentOfTheReference(String arch) throws Exception {
        Path dir = fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        ModelConfig cfg = ModelConfig.load(dir);
        ModelWeights weights = ModelWeights.load(dir, cfg);
        Tensor ids = Tensors.longs(expected.get("input_ids"));
        Tensor mask = Tensors.longs(expected.get("attention_mask"));
        Tensor labels = Tensors.longs(expected.get("labels"));
        Tensor positions = Tensors.positions(ids.size(0), ids.size(1));
        double want = expected.get("loss").asDouble();
        double autocast;
        try (dev.sparksft.runtime.Autocast a = dev.sparksft.runtime.Autocast.cpuBf16(true)) {
            autocast = CausalLmLoss.mean(new CausalLm(cfg, weights).forward(ids, mask, positions), labels);
        }
        java.util.Map<String, Tensor> bf16 = new java.util.LinkedHashMap<>();
        weights.tensors().forEach((n, t) -> bf16.put(n, t.to(Dtype.BF16.scalarType)));
        double pure = CausalLmLoss.mean(new CausalLm(cfg, new ModelWeights(bf16, java.util.Map.of(), java.util.Map.of()))
                .forward(ids, mask, positions).to(org.bytedeco.pytorch.global.torch.ScalarType.Float), labels);
        System.out.printf("parity %s: bf16 autocast loss %.5f (rel %.2e), pure bf16 %.5f (rel %.2e), reference %.5f%n", arch,
                autocast, Math.abs(autocast - want) / want, pure, Math.abs(pure - want) / want, want);
        assertEquals(want, autocast, 2e-2 * want, "bf16 autocast");
        assertEquals(want, pure, 2e-2 * want, "pure bf16");
    }

    /** The KV-cache generator's greedy tokens equal the independent reference's argmax decoding of row 0. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "phi3", "phi4_mini",
            "qwen3_moe", "qwen3_moe_unnormalised", "mixtral"})
    void greedyTokensMatchReference(String arch) throws Exception {
        Path dir = fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        ModelConfig cfg = ModelConfig.load(dir);
        CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
        int[] prompt = new ObjectMapper().convertValue(expected.get("input_ids").get(0), int[].class);
        int[] want = new ObjectMapper().convertValue(expected.get("greedy_tokens"), int[].class);
        int[] got = new dev.sparksft.generate.Generator(model, dev.sparksft.generate.Sampling.greedy(want.length),
                java.util.Set.of(), 0, 1, true).generate(java.util.List.of(prompt)).get(0).ids();
        assertArrayEquals(want, got, arch + " greedy tokens");
    }
}
