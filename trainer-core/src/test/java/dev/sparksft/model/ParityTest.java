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
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3"})
    void logitsAndLossMatchReference(String arch) throws Exception {
        Path dir = fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            LlamaModel model = new LlamaModel(cfg, ModelWeights.load(dir, cfg));
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

    /** The KV-cache generator's greedy tokens equal the independent reference's argmax decoding of row 0. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3"})
    void greedyTokensMatchReference(String arch) throws Exception {
        Path dir = fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        ModelConfig cfg = ModelConfig.load(dir);
        LlamaModel model = new LlamaModel(cfg, ModelWeights.load(dir, cfg));
        int[] prompt = new ObjectMapper().convertValue(expected.get("input_ids").get(0), int[].class);
        int[] want = new ObjectMapper().convertValue(expected.get("greedy_tokens"), int[].class);
        int[] got = new dev.sparksft.generate.Generator(model, dev.sparksft.generate.Sampling.greedy(want.length),
                java.util.Set.of(), 0, 1, true).generate(java.util.List.of(prompt)).get(0).ids();
        assertArrayEquals(want, got, arch + " greedy tokens");
    }
}
