package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Backward pass against central finite differences in float64: d loss / d w for entries of every
 * kind of parameter (embedding, attention, q/k norm, MLP, final norm, head) of the parity models.
 * Tolerance 1e-6 relative to the largest gradient checked (finite differences with h = 1e-5 are
 * accurate to about 1e-9 here).
 */
class GradientCheckTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "phi4_mini", "qwen3_moe",
            "qwen3_moe_unnormalised", "mixtral"})
    void autogradMatchesFiniteDifferences(String arch) throws Exception {
        Path dir = ParityTest.fixture(arch);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            ModelWeights loaded = ModelWeights.load(dir, cfg);
            Map<String, Tensor> doubles = new LinkedHashMap<>();
            Map<String, Dtype> dtypes = new LinkedHashMap<>();
            loaded.tensors().forEach((n, t) -> {
                Tensor d = t.to(ScalarType.Double).detach().clone();
                d.set_requires_grad(true);
                doubles.put(n, d);
                dtypes.put(n, Dtype.F32);
            });
            CausalLm model = new CausalLm(cfg, new ModelWeights(doubles, dtypes, Map.of()));
            Tensor ids = Tensors.longs(expected.get("input_ids"));
            Tensor mask = Tensors.longs(expected.get("attention_mask"));
            Tensor labels = Tensors.longs(expected.get("labels"));
            Tensor positions = Tensors.positions(ids.size(0), ids.size(1));
            long n = CausalLmLoss.countTargets(labels);

            Tensor loss = lossOf(model, ids, mask, positions, labels, n);
            loss.backward();
            List<String> names = doubles.keySet().stream().filter(k -> k.startsWith("model.embed") || k.contains("layers.1.")
                    || k.startsWith("model.norm") || k.startsWith("lm_head")).toList();
            double worst = 0;
            double largest = 0;
            for (String name : names) {
                Tensor w = doubles.get(name);
                Tensor flatGrad = w.grad().reshape(-1);
                for (long idx : new long[] {0, w.numel() / 2, w.numel() - 1}) {
                    double analytic = flatGrad.get(idx).item_double();
                    double numeric = finiteDifference(model, w, idx, ids, mask, positions, labels, n);
                    worst = Math.max(worst, Math.abs(analytic - numeric));
                    largest = Math.max(largest, Math.abs(numeric));
                }
            }
            System.out.printf("gradient check %s: max |autograd - finite difference| = %.2e (largest gradient %.2e)%n",
                    arch, worst, largest);
            assertTrue(largest > 1e-4, "the checked gradients must not all vanish");
            assertTrue(worst < 1e-6 * Math.max(1, largest), arch + ": gradients differ by " + worst);
        }
    }

    static Tensor lossOf(CausalLm model, Tensor ids, Tensor mask, Tensor positions, Tensor labels, long n) {
        Tensor logits = model.forward(ids, mask, positions);
        return CausalLmLoss.tokenLosses(logits.to(ScalarType.Double), labels).sum().div(new Scalar((double) n));
    }

    static double finiteDifference(CausalLm model, Tensor w, long idx, Tensor ids, Tensor mask, Tensor positions,
                                   Tensor labels, long n) {
        double h = 1e-5;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            Tensor flat = w.view(-1);
            double original = flat.get(idx).item_double();
            flat.get(idx).fill_(new Scalar(original + h));
            double plus = lossOf(model, ids, mask, positions, labels, n).item_double();
            flat.get(idx).fill_(new Scalar(original - h));
            double minus = lossOf(model, ids, mask, positions, labels, n).item_double();
            flat.get(idx).fill_(new Scalar(original));
            return (plus - minus) / (2 * h);
        }
    }
}
