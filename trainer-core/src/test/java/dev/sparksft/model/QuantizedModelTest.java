package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.NewTokens;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The tiny Qwen2 (q/k/v biases) loaded with its layer linears in 4 bits: the forward equals the
 * forward of the same model holding the dequantized weights as ordinary tensors (bit for bit:
 * the same values reach the same matmuls), LoRA trains over it with gradients reaching only the
 * adapter, and only the 14 layer linears are quantized (embedding, head, norms and biases stay).
 */
class QuantizedModelTest {
    @TempDir
    static Path dir;
    static Path modelDir;
    static final Device CPU = new Device(torch.DeviceType.CPU);

    @BeforeAll
    static void tinyModel() throws Exception {
        Torch.load(1);
        modelDir = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("qwen2", modelDir, 5, 32, 2, 4, 2, 64, null, 0, 0));
    }

    /** The model whose ordinary tensors are {@code q}'s 4-bit weights dequantized. */
    static CausalLm dequantized(CausalLm q) {
        Map<String, Tensor> dense = new LinkedHashMap<>(q.weights().tensors());
        q.weights().quantizedWeights().forEach((n, w) -> dense.put(n, w.dequantize()));
        return new CausalLm(q.config(), new ModelWeights(dense, Map.of(), Map.of()));
    }

    @ParameterizedTest
    @CsvSource({"NF4,true,F32", "NF4,false,BF16", "FP4,true,BF16", "FP4,false,F32"})
    void theForwardOverFourBitWeightsIsTheForwardOverTheirDequantizedValues(FourBitType type, boolean nested, Dtype held)
            throws Exception {
        CausalLm q = CausalLm.load(modelDir, NewTokens.none(0), 0, CPU, (name, cfg) -> held, new FourBitQuantization(type, nested));
        assertEquals(14, q.weights().quantizedWeights().size(), "7 linears x 2 layers");
        assertNotNull(q.weights().tensors().get("model.layers.0.self_attn.q_proj.bias"), "biases stay tensors");
        assertNull(q.weights().tensors().get("model.layers.0.mlp.up_proj.weight"));
        assertEquals(held.scalarType.value, q.weights().quantized("model.layers.1.mlp.down_proj.weight").dequantize().scalar_type().value);

        Tensor a = LoraTest.logits(q);
        Tensor b = LoraTest.logits(dequantized(q));
        assertEquals(0, a.sub(b).abs().max().item_double(), 0.0);
        // and 4 bits are an approximation: the logits move, but little, from the float model's
        Tensor full = LoraTest.logits(CausalLm.load(modelDir, 0));
        double moved = a.to(torch.ScalarType.Float).sub(full).abs().max().item_double();
        assertTrue(moved > 0 && moved < 0.5 * full.abs().max().item_double(), "4-bit logits moved by " + moved);
    }

    @ParameterizedTest
    @CsvSource({"NF4", "FP4"})
    void loraTrainsOverFourBitWeights(FourBitType type) throws Exception {
        CausalLm q = CausalLm.load(modelDir, NewTokens.none(0), 0, CPU, null, new FourBitQuantization(type, true));
        q.weights().tensors().values().forEach(t -> t.set_requires_grad(false));
        LoraAdapter adapter = LoraAdapter.create(q.weights(), new LoraAdapter.Settings(4, 8, 0.0, false,
                java.util.List.of("all"), java.util.List.of()), 3);
        assertEquals(28, adapter.tensors().size(), "A and B for each of the 14 quantized linears");
        adapter.tensors().values().forEach(t -> t.set_requires_grad(true));
        CausalLm m = q.withAdapter(adapter);
        LoraTest.logits(m).pow(new org.bytedeco.pytorch.Scalar(2)).mean().backward();
        double gradB = adapter.tensors().entrySet().stream().filter(e -> e.getKey().contains("lora_B"))
                .mapToDouble(e -> e.getValue().grad().abs().sum().item_double()).sum();
        assertTrue(gradB > 0, "the adapter's B receives gradients");
        assertTrue(q.weights().tensors().values().stream().allMatch(t -> !t.grad().defined()), "the base stays frozen");
    }

    @ParameterizedTest
    @CsvSource({"NF4"})
    void aModelWithFourBitWeightsIsNeverSavedWhole(FourBitType type, @TempDir Path out) throws Exception {
        CausalLm q = CausalLm.load(modelDir, NewTokens.none(0), 0, CPU, null, new FourBitQuantization(type, true));
        assertThrows(IllegalStateException.class, () -> q.weights().save(out, Dtype.F32));
        assertThrows(IllegalStateException.class, () -> q.weights().get("model.layers.0.self_attn.o_proj.weight"));
    }
}
