package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Models;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * qwen3_moe and mixtral: config.json reading (which layers are sparse, the refusals by key), the
 * checkpoint names and their refusals (a missing expert, transformers 5's fused experts), the
 * load-balancing loss against the numpy reference (make_moe_fixtures.py, 1e-6 relative), and LoRA's
 * "all" over the experts and routers.
 * The forward pass itself is {@link ParityTest}'s.
 */
class MoeTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static ObjectNode qwen3Moe() throws Exception {
        return (ObjectNode) JSON.readTree("""
                {"model_type": "qwen3_moe", "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
                 "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
                 "vocab_size": 96, "num_experts": 4, "num_experts_per_tok": 2}""");
    }

    static String refusal(ObjectNode c) {
        return assertThrows(UserError.class, () -> ModelConfig.fromJson(c, "config.json")).getMessage();
    }

    @Test
    void sparseLayersFollowDecoderSparseStepAndMlpOnlyLayers() throws Exception {
        ObjectNode c = qwen3Moe();
        MoeConfig moe = ModelConfig.fromJson(c, "config.json").moe();
        assertEquals(List.of(true, true, true, true), moe.sparseLayers());
        assertEquals(false, moe.normTopkProb(), "Qwen3MoeConfig's default");
        assertEquals(0.001, moe.routerAuxLossCoef());
        c.put("decoder_sparse_step", 2);
        c.putArray("mlp_only_layers").add(3);
        ModelConfig cfg = ModelConfig.fromJson(c, "config.json");
        assertEquals(List.of(false, true, false, false), cfg.moe().sparseLayers());
        Map<String, long[]> shapes = new ModelLayout(cfg).expectedShapes();
        assertEquals(List.of(4L, 32L), List.of(shapes.get("model.layers.1.mlp.gate.weight")[0],
                shapes.get("model.layers.1.mlp.gate.weight")[1]));
        assertEquals(16, shapes.get("model.layers.1.mlp.experts.3.up_proj.weight")[0]);
        assertEquals(32, shapes.get("model.layers.1.mlp.experts.3.down_proj.weight")[0]);
        assertEquals(64, shapes.get("model.layers.0.mlp.gate_proj.weight")[0], "a dense layer: intermediate_size");
        assertTrue(!shapes.containsKey("model.layers.0.mlp.gate.weight"));

        ObjectNode m = (ObjectNode) JSON.readTree("""
                {"model_type": "mixtral", "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96, "num_local_experts": 3}""");
        ModelConfig mixtral = ModelConfig.fromJson(m, "config.json");
        assertEquals(List.of(true, true), mixtral.moe().sparseLayers());
        assertEquals(2, mixtral.moe().topK(), "MixtralConfig's default");
        assertTrue(mixtral.moe().normTopkProb(), "Mixtral always renormalises");
        Map<String, long[]> ms = new ModelLayout(mixtral).expectedShapes();
        assertEquals(40, ms.get("model.layers.1.block_sparse_moe.experts.2.w3.weight")[0]);
        assertEquals(3, ms.get("model.layers.0.block_sparse_moe.gate.weight")[0]);
    }

    @Test
    void badRoutingKeysAreNamed() throws Exception {
        ObjectNode c = qwen3Moe();
        c.put("num_experts_per_tok", 5);
        assertTrue(refusal(c).contains("num_experts_per_tok (5) exceeds num_experts (4)"), refusal(c));
        c = qwen3Moe();
        c.put("num_experts", 0);
        assertTrue(refusal(c).contains("num_experts must be a positive integer, got 0"), refusal(c));
        c = qwen3Moe();
        c.putArray("mlp_only_layers").add(4);
        assertTrue(refusal(c).contains("mlp_only_layers entry 4 is not a layer index 0..3"), refusal(c));
        c = qwen3Moe();
        c.put("router_aux_loss_coef", -1);
        assertTrue(refusal(c).contains("router_aux_loss_coef must be >= 0"), refusal(c));
        c = qwen3Moe();
        c.put("use_sliding_window", true);
        assertTrue(refusal(c).contains("use_sliding_window=true"), refusal(c));
        ObjectNode m = (ObjectNode) JSON.readTree("""
                {"model_type": "mixtral", "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96, "router_jitter_noise": 0.1}""");
        assertTrue(refusal(m).contains("router_jitter_noise=0.1 is not supported"), refusal(m));
    }

    /** A fixture's weights written again without {@code drop} and with {@code add}; the model directory. */
    static Path rewritten(Path dir, String fixture, String drop, String add, long[] addShape) throws Exception {
        Path from = ParityTest.fixture(fixture);
        ModelConfig cfg = ModelConfig.load(from);
        Map<String, Tensor> tensors = new LinkedHashMap<>(ModelWeights.load(from, cfg).tensors());
        tensors.remove(drop);
        if (add != null) {
            tensors.put(add, org.bytedeco.pytorch.global.torch.zeros(addShape));
        }
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        tensors.keySet().forEach(n -> dtypes.put(n, Dtype.F32));
        new ModelWeights(tensors, dtypes, Map.of()).save(dir, Dtype.F32);
        Files.copy(from.resolve("config.json"), dir.resolve("config.json"));
        return dir;
    }

    @Test
    void aMissingExpertOrFusedExpertsAreNamed(@TempDir Path dir) throws Exception {
        Path missing = rewritten(Files.createDirectories(dir.resolve("missing")), "mixtral",
                "model.layers.1.block_sparse_moe.experts.2.w2.weight", null, null);
        String m = assertThrows(UserError.class, () -> ModelWeights.load(missing, ModelConfig.load(missing))).getMessage();
        assertTrue(m.contains("missing 1 tensor(s), first: model.layers.1.block_sparse_moe.experts.2.w2.weight"), m);
        Path fused = rewritten(Files.createDirectories(dir.resolve("fused")), "qwen3_moe", null,
                "model.layers.0.mlp.experts.gate_up_proj", new long[] {4, 48, 32});
        m = assertThrows(UserError.class, () -> ModelWeights.load(fused, ModelConfig.load(fused))).getMessage();
        assertTrue(m.contains("'model.layers.0.mlp.experts.gate_up_proj' holds all experts of a layer in one fused "
                + "tensor"), m);
    }

    /**
     * transformers' load_balancing_loss_func over the sparse layers' router logits equals the
     * reference's, for the padded batch and for each row alone (HF's per-micro-batch values).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3_moe", "qwen3_moe_unnormalised", "mixtral"})
    void loadBalancingLossMatchesReference(String fixture) throws Exception {
        Path dir = ParityTest.fixture(fixture);
        JsonNode expected = JSON.readTree(dir.resolve("expected.json").toFile());
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
            Tensor ids = Tensors.longs(expected.get("input_ids"));
            Tensor mask = Tensors.longs(expected.get("attention_mask"));
            MoeConfig moe = cfg.moe();
            double whole = aux(model, ids, mask, moe);
            double want = expected.get("aux_loss").asDouble();
            System.out.printf("aux %s: %.8f vs reference %.8f (rel %.2e)%n", fixture, whole, want,
                    Math.abs(whole - want) / want);
            assertEquals(want, whole, 1e-6 * want, fixture + " aux loss");
            for (int row = 0; row < 2; row++) {
                double got = aux(model, ids.narrow(0, row, 1), mask.narrow(0, row, 1), moe);
                double wantRow = expected.get("aux_loss_rows").get(row).asDouble();
                assertEquals(wantRow, got, 1e-6 * wantRow, fixture + " row " + row);
            }
        }
    }

    /** The forward's router logits, collected layer by layer, into SparseMoe.loadBalancingLoss. */
    static double aux(CausalLm model, Tensor ids, Tensor mask, MoeConfig moe) {
        List<Tensor> logits = new ArrayList<>();
        CausalLm.Context ctx = model.context(mask, Tensors.positions(ids.size(0), ids.size(1)), null)
                .collectingRouterLogits(logits);
        Tensor x = model.embed(ids);
        for (int i = 0; i < model.numLayers(); i++) {
            x = model.layer(i, x, ctx);
        }
        assertEquals(moe.sparseLayers().stream().filter(b -> b).count(), logits.size());
        return SparseMoe.loadBalancingLoss(logits, mask, moe.numExperts(), moe.topK()).item_double();
    }

    @Test
    void loraAllAdaptsEveryExpertAndRouterAsPeftNamesThem() throws Exception {
        Path dir = ParityTest.fixture("mixtral");
        ModelConfig cfg = ModelConfig.load(dir);
        LoraAdapter lora = LoraAdapter.create(ModelWeights.load(dir, cfg),
                new LoraAdapter.Settings(2, 4, 0, false, List.of("all"), List.of()), 1);
        List<String> names = new ArrayList<>(lora.tensors().keySet());
        for (String module : List.of("self_attn.q_proj", "block_sparse_moe.gate", "block_sparse_moe.experts.3.w1",
                "block_sparse_moe.experts.0.w2", "block_sparse_moe.experts.1.w3")) {
            assertTrue(names.contains("model.layers.1." + module + ".lora_A.weight"), module + " in " + names);
        }
        // 2 layers x (4 attention + router + 4 experts x 3) linears, an A and a B each
        assertEquals(2 * (4 + 1 + 12) * 2, names.size());
    }
}
