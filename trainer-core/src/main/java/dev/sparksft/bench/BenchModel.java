package dev.sparksft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The benchmarks' model: a Llama of hidden 512, 6 layers, 8 heads, intermediate 1408 and vocab
 * 6144 (25.6M parameters), weights drawn N(0, 0.02) from a fixed seed (in float32, rounded to
 * bfloat16 for pure_bf16).
 */
final class BenchModel {
    private BenchModel() {}

    static CausalLm random() throws IOException {
        return random(false);
    }

    /** The bench model, its weights held in bfloat16 when {@code bf16} (pure_bf16), else float32. */
    static CausalLm random(boolean bf16) throws IOException {
        Path dir = Files.createTempDirectory("bench-model");
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("model_type", "llama").put("hidden_size", 512).put("intermediate_size", 1408)
                .put("num_hidden_layers", 6).put("num_attention_heads", 8).put("num_key_value_heads", 8)
                .put("vocab_size", 6144).put("rms_norm_eps", 1e-6).put("rope_theta", 500000.0)
                .put("tie_word_embeddings", false).put("torch_dtype", "float32");
        Files.writeString(dir.resolve("config.json"), c.toString());
        ModelConfig cfg = ModelConfig.load(dir);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        torch.manual_seed(0);
        ModelWeights.expectedShapes(cfg).forEach((name, shape) -> {
            Tensor w = torch.randn(shape).mul(new Scalar(0.02));
            tensors.put(name, bf16 ? w.to(torch.ScalarType.BFloat16) : w);
            dtypes.put(name, bf16 ? Dtype.BF16 : Dtype.F32);
        });
        return new CausalLm(cfg, new ModelWeights(tensors, dtypes, Map.of()));
    }
}
